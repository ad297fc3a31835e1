-- Change requests and the calendar (issue 9). The other backend's migrations/0006_changes.sql
-- makes the same tables with the same columns.

-- A change request: the server's JSON document (the form, its place in the state machine,
-- its rollout) with the columns lists filter on. `revision` counts updates: an update names
-- the revision it read, so two writers cannot both win.
CREATE TABLE changes (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('standard', 'normal', 'emergency')),
    state TEXT NOT NULL,
    requester TEXT NOT NULL,
    body TEXT NOT NULL,
    revision BIGINT NOT NULL CHECK (revision > 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX changes_by_state ON changes (state, created_at);

-- The jobs of a change are found by its number.
CREATE INDEX jobs_created_by ON jobs (created_by, created_at);

-- Maintenance windows, change freezes and schedule templates, by name.
CREATE TABLE calendar_entries (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('window', 'freeze', 'template')),
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
