-- Lighter findings indexes: every first inventory opens some 600 findings at once, and each
-- row used to enter three indexes, two of them led by the host's UUID as 36 bytes of text.
-- Findings now name their host by a small integer as well (`hosts.seq`, given in enrolment
-- order and never reused: hosts are not deleted), and only the indexes the queries need
-- remain, partial where only one state is ever looked up:
--   * the open key, one open finding per (host, package, arch, vulnerability), which also
--     serves every "this host's open findings" lookup;
--   * closed findings by host (a host's patch history);
--   * open findings by due date (the SLA clocks).
-- The `host` text column stays, with its foreign key, as the findings' public host id.
-- PostgreSQL's migration of the same name makes the same index changes; its host ids are
-- already 16-byte UUIDs.
ALTER TABLE hosts ADD COLUMN seq INTEGER;
UPDATE hosts SET seq = rowid;
CREATE UNIQUE INDEX hosts_seq ON hosts (seq);

ALTER TABLE findings ADD COLUMN host_seq INTEGER;
UPDATE findings SET host_seq = (SELECT h.seq FROM hosts h WHERE h.id = findings.host);

DROP INDEX findings_open_key;
DROP INDEX findings_host_state;
DROP INDEX findings_state_due;
CREATE UNIQUE INDEX findings_open_key ON findings (host_seq, package, arch, vulnerability)
WHERE state = 'open';
CREATE INDEX findings_host_closed ON findings (host_seq) WHERE state = 'closed';
CREATE INDEX findings_open_due ON findings (due_at) WHERE state = 'open';
