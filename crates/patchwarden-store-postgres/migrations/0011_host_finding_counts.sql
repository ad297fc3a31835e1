-- Every check-in answers with the host's open findings, and a new host's check-ins ask
-- whether any of them has a released fix. Counting some 600 findings a host on every
-- check-in of every host was most of a check-in's database work; the counts now live on the
-- host's row, set by every findings sync (the only change of findings), and are filled in
-- here from the findings already stored. SQLite's migration of the same name does the same.
ALTER TABLE hosts ADD COLUMN open_findings BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN open_fixable BIGINT NOT NULL DEFAULT 0;
UPDATE hosts h SET open_findings = c.open, open_fixable = c.fixable
FROM (SELECT f.host, COUNT(*) AS open,
             COUNT(*) FILTER (WHERE (b.body::jsonb ->> 'fixed') IS NOT NULL) AS fixable
      FROM findings f JOIN finding_bodies b ON b.id = f.body_id
      WHERE f.state = 'open' GROUP BY f.host) c
WHERE c.host = h.id;
