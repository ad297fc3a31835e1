-- Lighter findings indexes (SQLite's migration of the same name says why): every first
-- inventory opens some 600 findings at once, and each row entered three indexes. Only the
-- ones the queries need remain, partial where only one state is ever looked up:
--   * the open key (unchanged), which also serves every "this host's open findings" lookup;
--   * closed findings by host (a host's patch history);
--   * open findings by due date (the SLA clocks).
-- Host ids here are 16-byte UUIDs already, so unlike SQLite no integer host key is added.
DROP INDEX findings_host_state;
DROP INDEX findings_state_due;
CREATE INDEX findings_host_closed ON findings (host) WHERE state = 'closed';
CREATE INDEX findings_open_due ON findings (due_at) WHERE state = 'open';
