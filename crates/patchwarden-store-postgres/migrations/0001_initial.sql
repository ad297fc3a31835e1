-- Patchwarden's first schema (PostgreSQL). SQLite's migrations/0001_initial.sql creates the
-- same tables with the same columns; keep the two in step, and never edit a migration once it
-- has shipped: add the next one.
--
-- Times are integer nanoseconds since the Unix epoch and JSON is text (not jsonb, which
-- rewrites keys and numbers): both as in SQLite, so the backends store the same values.

-- The audit chain's head: one row, locked by every changing transaction as its last step.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    object TEXT NOT NULL CHECK (length(object) BETWEEN 1 AND 256),
    entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE enrollment_tokens (
    id UUID PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    grp TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_uses BIGINT NOT NULL CHECK (max_uses >= 1),
    uses BIGINT NOT NULL CHECK (uses >= 0 AND uses <= max_uses),
    revoked_at BIGINT,
    note TEXT
);

CREATE TABLE hosts (
    id UUID PRIMARY KEY,
    grp TEXT NOT NULL,
    ring TEXT,
    labels TEXT NOT NULL,
    public_key TEXT NOT NULL,
    facts TEXT NOT NULL,
    machine_id TEXT,
    ecosystem TEXT,
    enrolled_with UUID NOT NULL REFERENCES enrollment_tokens (id),
    enrolled_at BIGINT NOT NULL,
    last_seen BIGINT,
    inventory_digest TEXT
);
CREATE INDEX hosts_machine_id ON hosts (machine_id);
CREATE INDEX hosts_grp ON hosts (grp);
CREATE INDEX hosts_ecosystem ON hosts (ecosystem);

CREATE TABLE nonces (
    host UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (host, nonce)
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE inventories (
    host UUID PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    inventory TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE findings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    package TEXT NOT NULL,
    arch TEXT NOT NULL,
    vulnerability TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    body TEXT NOT NULL,
    class TEXT,
    due_at BIGINT,
    policy TEXT,
    rule TEXT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    closed_at BIGINT,
    fixed_version TEXT
);
-- One open finding per key; closed ones stay as history.
CREATE UNIQUE INDEX findings_open_key ON findings (host, package, arch, vulnerability)
WHERE state = 'open';
CREATE INDEX findings_host_state ON findings (host, state);
CREATE INDEX findings_state_due ON findings (state, due_at);

CREATE TABLE finding_history (
    -- SQLite orders history by its implicit rowid; PostgreSQL has none, so it is explicit.
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    finding BIGINT NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    class TEXT,
    due_at BIGINT,
    policy TEXT,
    rule TEXT
);
CREATE INDEX finding_history_finding ON finding_history (finding);

CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    host UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'leased', 'running', 'succeeded', 'failed')),
    lease_until BIGINT,
    attempts BIGINT NOT NULL,
    progress TEXT,
    result TEXT,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_host_state ON jobs (host, state, created_at);
