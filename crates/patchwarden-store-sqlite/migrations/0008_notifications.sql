-- Notifications (issue 10 item 5): the outbox of webhook and mail deliveries, and the
-- notifier's place in the audit chain. The same tables with the same columns on SQLite and
-- PostgreSQL. Times are unix nanoseconds; the payload is JSON text.

-- One row per (event, destination). The unique key is what makes queueing idempotent: a
-- second server, or the next sweep, queueing the same event for the same destination changes
-- nothing. `lease` names the sender holding the row until `lease_until`; a finish by anyone
-- else is refused.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    destination TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    lease TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (dedup_key, destination)
);

CREATE INDEX notifications_due ON notifications (state, next_attempt_at);

-- The last audit sequence number the notifier turned into notifications (NULL until it first
-- ran: it then starts at the chain's head rather than notifying the whole history).
CREATE TABLE notification_cursor (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    audit_seq BIGINT
);

INSERT INTO notification_cursor (id, audit_seq) VALUES (1, NULL);
