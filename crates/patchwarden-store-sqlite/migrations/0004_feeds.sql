-- Advisory feeds on the server (issue 8, item 2), SQLite. PostgreSQL's
-- migrations/0004_feeds.sql makes the same tables with the same columns.

-- A feed source: its definition (from the configuration, an operator, or `feeds import`) and
-- where its fetching stands. Times are unix nanoseconds, as everywhere in this schema.
CREATE TABLE feed_sources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL
        CHECK (kind IN ('osv', 'csaf', 'alpine', 'debian', 'kev', 'epss', 'manual')),
    location TEXT NOT NULL,
    interval_secs BIGINT CHECK (interval_secs > 0),
    expected_period_secs BIGINT CHECK (expected_period_secs > 0),
    origin TEXT NOT NULL CHECK (origin IN ('config', 'operator', 'import')),
    created_at BIGINT NOT NULL,
    -- The validators of the last response, for the next conditional request, and the hash
    -- of the content last imported.
    etag TEXT,
    last_modified TEXT,
    content_sha256 TEXT,
    -- The source's own bookkeeping (JSON), such as a CSAF provider's documents.
    cursor TEXT,
    last_attempt_at BIGINT,
    last_success_at BIGINT,
    last_updated_at BIGINT,
    last_error TEXT,
    failures BIGINT NOT NULL DEFAULT 0 CHECK (failures >= 0),
    sync_requested_at BIGINT,
    records BIGINT NOT NULL DEFAULT 0 CHECK (records >= 0)
);

-- Every run of a source: its outcome, and its details (HTTP status, counts, the records
-- rejected and why, the error) as JSON. The last hundred per source are kept.
CREATE TABLE feed_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL REFERENCES feed_sources (name) ON DELETE CASCADE,
    finished_at BIGINT NOT NULL,
    outcome TEXT NOT NULL
        CHECK (outcome IN ('imported', 'not_modified', 'unchanged', 'failed', 'checked')),
    body TEXT NOT NULL
);
CREATE INDEX feed_runs_by_source ON feed_runs (source, id);

-- The enrichment a source brought (the KEV catalogue, EPSS scores) as one JSON document,
-- replaced whole by each import of the source.
CREATE TABLE feed_enrichment (
    source TEXT PRIMARY KEY REFERENCES feed_sources (name) ON DELETE CASCADE,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Counters servers compare to learn of changes another server made (the advisory
-- generation: rebuild the matcher when it moved).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('advisory_generation', 0);

-- Leases: one holder at a time, until the lease expires (the feed scheduler's, so that of
-- several servers sharing a database one fetches).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The triage queue: one item per vulnerability, with its review clock and the
-- classification a person gave it (all four decision columns set together, or none).
CREATE TABLE triage_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vulnerability TEXT NOT NULL UNIQUE,
    advisories TEXT NOT NULL,
    summary TEXT,
    arrived_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    class TEXT CHECK (class IN ('emergency', 'high', 'medium', 'low', 'not_applicable')),
    reason TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    CHECK ((class IS NULL) = (decided_at IS NULL)
       AND (class IS NULL) = (reason IS NULL)
       AND (class IS NULL) = (decided_by IS NULL))
);
CREATE INDEX triage_items_pending ON triage_items (due_at) WHERE decided_at IS NULL;
