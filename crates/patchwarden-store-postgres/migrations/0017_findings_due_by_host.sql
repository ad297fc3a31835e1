-- Open findings due before a time are found host by host: each host's row keeps the earliest
-- due date among its open findings (`next_due`, written by every findings sync with the
-- host's counts of migration 0011 — the sync is the only change of findings), and the
-- findings of the hosts due before the time are read through the open key, which every
-- host's findings lead. The fleet-wide index of open findings by due date goes.
--
-- Why: a finding's due date mostly comes from its advisory (the clock starts when the fix is
-- released), so every host has the same few hundred dates, and a first inventory's ~580
-- findings each went into a different leaf page of that index, spread over all of it; at
-- 50,000 hosts that was 1.7 ms of PostgreSQL's 8.4 ms an upload (BENCHMARKS.md, tenth
-- session). The other indexes take a host's findings side by side (the open key, led by the
-- host) or at their right edge (the primary key).
--
-- SQLite's migration of this name changes nothing: its single writer has the index's pages
-- in its cache, and it keeps the index.
ALTER TABLE hosts ADD COLUMN next_due BIGINT;
UPDATE hosts h SET next_due = d.due
FROM (SELECT host, min(due_at) AS due FROM findings WHERE state = 'open' GROUP BY host) d
WHERE d.host = h.id;
DROP INDEX findings_open_due;
