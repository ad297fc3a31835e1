-- A host's standing, the moment it was first current, and its agent's check-in counter, as
-- columns of their own (PostgreSQL). Until now the server kept the first three as reserved
-- `patchwarden.*` labels and the counter in each server's memory, which a restart forgot and
-- other servers never saw. SQLite's migrations/0002_host_state.sql adds the same columns.
--
-- No data is carried over from those labels: no database with them was ever deployed.

-- 'active', 'quarantined' (one identity seen on two machines) or 'retired' (final).
ALTER TABLE hosts ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'quarantined', 'retired'));
-- Why it was quarantined or retired, and when; NULL while active.
ALTER TABLE hosts ADD COLUMN state_reason TEXT;
ALTER TABLE hosts ADD COLUMN state_changed_at BIGINT;
-- When a new host was first current (P19); NULL while it is new.
ALTER TABLE hosts ADD COLUMN baseline_met_at BIGINT;
-- The last check-in counter accepted; NULL before the first check-in.
ALTER TABLE hosts ADD COLUMN check_in_seq BIGINT CHECK (check_in_seq >= 0);
