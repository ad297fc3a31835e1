-- The inserted findings' host check (migration 0013) looked each finding's host up: an upload
-- inserts a few hundred findings of one host, so the same index entry (and, until the
-- visibility map says otherwise, the same heap row) was visited a few hundred times — about
-- 2 ms of every upload, measured with pg_stat_statements. The hosts are now looked up once
-- each, in a loop, which also keeps the look-up an index probe whatever the planner would
-- think of a join with the whole hosts table. The bodies are nearly all distinct and keep
-- their anti-join.
CREATE OR REPLACE FUNCTION findings_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    named UUID;
BEGIN
    FOR named IN SELECT DISTINCT host FROM changed_findings LOOP
        IF NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = named) THEN
            RAISE EXCEPTION 'a finding names a host that does not exist'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM changed_findings f
               WHERE NOT EXISTS (SELECT 1 FROM finding_bodies b WHERE b.id = f.body_id)) THEN
        RAISE EXCEPTION 'a finding names a body that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
