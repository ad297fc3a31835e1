-- Findings' references checked once a statement instead of once a row. A foreign key checks
-- each inserted row with a query of its own that also locks the referenced row (FOR KEY
-- SHARE): a first inventory inserts some 580 findings, so 1,160 such queries, and the finding
-- bodies they lock are shared by every similar host, so the uploads running together all lock
-- the same rows (the lock that several transactions hold is a multixact, itself written and
-- logged). At 3,000 hosts those checks were 3.5 million queries, 31 s of the backends' time
-- for 3,000 uploads (`pg_stat_statements`).
--
-- The same rules now hold through statement triggers that see all of a statement's rows at
-- once (transition tables), each check one anti-join through the parents' primary keys:
--   * a finding names a host and a body that exist (checked for a statement's inserted rows
--     together, and for an updated row when its host or body changed);
--   * deleting a host deletes its findings, as ON DELETE CASCADE did;
--   * a body still named by a finding cannot be deleted.
-- What the checks do not take are the row locks, so a host or body deleted by one transaction
-- while another inserts findings naming it could pass both checks. Nothing deletes either:
-- hosts are retired, never deleted, and bodies are never deleted; the triggers are there so
-- that a mistake in the server or a hand-made change cannot leave a finding pointing nowhere.
-- SQLite keeps its foreign keys (its single writer takes no row locks, and a row's check is
-- a look-up in a B-tree it already holds in its cache); its migration of this name is empty.
ALTER TABLE findings DROP CONSTRAINT findings_body_id_fkey;
ALTER TABLE findings DROP CONSTRAINT findings_host_fkey;

CREATE FUNCTION findings_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_findings f
               WHERE NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = f.host)) THEN
        RAISE EXCEPTION 'a finding names a host that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM changed_findings f
               WHERE NOT EXISTS (SELECT 1 FROM finding_bodies b WHERE b.id = f.body_id)) THEN
        RAISE EXCEPTION 'a finding names a body that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER findings_references_inserted AFTER INSERT ON findings
    REFERENCING NEW TABLE AS changed_findings
    FOR EACH STATEMENT EXECUTE FUNCTION findings_check_references();
-- An update is checked only for the rows whose references it changes (a new body when a
-- finding's text changed), as a foreign key does: the sync that touches every open finding of
-- a host (its `last_seen`) pays nothing.
CREATE FUNCTION findings_check_changed_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = NEW.host) THEN
        RAISE EXCEPTION 'a finding names a host that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM finding_bodies b WHERE b.id = NEW.body_id) THEN
        RAISE EXCEPTION 'a finding names a body that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER findings_references_updated AFTER UPDATE OF host, body_id ON findings
    FOR EACH ROW
    WHEN (OLD.host IS DISTINCT FROM NEW.host OR OLD.body_id IS DISTINCT FROM NEW.body_id)
    EXECUTE FUNCTION findings_check_changed_references();

CREATE FUNCTION hosts_delete_findings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM findings f USING deleted_hosts d WHERE f.host = d.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER hosts_deleted AFTER DELETE ON hosts
    REFERENCING OLD TABLE AS deleted_hosts
    FOR EACH STATEMENT EXECUTE FUNCTION hosts_delete_findings();

CREATE FUNCTION finding_bodies_refuse_named() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM deleted_bodies d JOIN findings f ON f.body_id = d.id) THEN
        RAISE EXCEPTION 'a finding body still named by a finding cannot be deleted'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER finding_bodies_deleted AFTER DELETE ON finding_bodies
    REFERENCING OLD TABLE AS deleted_bodies
    FOR EACH STATEMENT EXECUTE FUNCTION finding_bodies_refuse_named();
