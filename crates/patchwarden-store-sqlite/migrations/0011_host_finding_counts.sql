-- Every check-in answers with the host's open findings, and a new host's check-ins ask
-- whether any of them has a released fix. Counting some 600 findings a host on every
-- check-in of every host was most of a check-in's database work; the counts now live on the
-- host's row, set by every findings sync (the only change of findings), and are filled in
-- here from the findings already stored. PostgreSQL's migration of the same name does the
-- same.
ALTER TABLE hosts ADD COLUMN open_findings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN open_fixable INTEGER NOT NULL DEFAULT 0;
UPDATE hosts SET
    open_findings = (SELECT COUNT(*) FROM findings f
                     WHERE f.host_seq = hosts.seq AND f.state = 'open'),
    open_fixable = (SELECT COUNT(*) FROM findings f JOIN finding_bodies b ON b.id = f.body_id
                    WHERE f.host_seq = hosts.seq AND f.state = 'open'
                      AND json_extract(b.body, '$.fixed') IS NOT NULL);
