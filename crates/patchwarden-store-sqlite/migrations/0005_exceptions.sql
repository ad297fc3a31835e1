-- Exceptions (risk acceptance; issue 9 item 5, seed 003 "Exceptions", clause P16). The same
-- tables with the same columns on SQLite and PostgreSQL. Times are unix nanoseconds.

-- An exception: the core's record as JSON (justification, explanation, controls, protected
-- data, requester, expiry, data owner's acknowledgement, state) with the columns a query
-- selects on, and its scope (findings and whole hosts) as JSON.
CREATE TABLE exceptions (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    year BIGINT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    state TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'revoked')),
    requester TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    scope TEXT NOT NULL,
    UNIQUE (year, seq)
);

CREATE INDEX exceptions_state_expiry ON exceptions (state, expires_at);

-- The hosts an exception names (for one of their findings or whole), so that a host's
-- exceptions are found without reading every scope.
CREATE TABLE exception_hosts (
    exception_id TEXT NOT NULL REFERENCES exceptions (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    PRIMARY KEY (exception_id, host)
);

CREATE INDEX exception_hosts_host ON exception_hosts (host);
