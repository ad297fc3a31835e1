-- Incidents: problems reported after maintenance from the public status page (issue 10,
-- seed 000 6.7.6), linked to the change that last touched the service. The same table with
-- the same columns on SQLite and PostgreSQL. Times are unix nanoseconds. The reporter's text
-- is plain text (escaped wherever it is shown); the reporter's address is not kept.
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    year BIGINT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    service TEXT NOT NULL,
    description TEXT NOT NULL,
    contact TEXT,
    change_number TEXT,
    state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    resolution TEXT,
    UNIQUE (year, seq)
);

CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_change ON incidents (change_number);
