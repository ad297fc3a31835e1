-- A finding's key — package, architecture, vulnerability — is stored once per fleet, in
-- `finding_subjects`, and findings name it by a number. The open key becomes (host, subject):
-- 24 bytes of two fixed-width values an entry where it was the host and three texts compared
-- by collation, and each finding row loses its three texts. Every host of a similar fleet has
-- the same few thousand keys, so the table of subjects stays small.
--
-- Why: an upload's ~580 new findings are PostgreSQL's main cost of an upload, and the open
-- key's text comparisons were the largest share of a row's insert: 300 new hosts' findings
-- inserted into a 1.45-million-row table took 2.09 s of a backend's CPU against 2.78 s with
-- the three texts (five alternating rounds, BENCHMARKS.md, eleventh session).
--
-- A body is the finding serialised, so it has one subject: each body keeps its subject, and
-- the findings insert reads a body's id and subject in one look-up by digest. The reference
-- check of migrations 0013/0014 checks that a finding's subject is its body's, so a finding
-- cannot name a key other than its body's (and a body's subject exists: a foreign key, checked
-- only when a body is stored, which is rare).
--
-- SQLite's migration of this name changes nothing: its single writer compares the keys in
-- pages it holds in its cache, binary collation, and keeps its columns.
CREATE TABLE finding_subjects (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    package TEXT NOT NULL,
    arch TEXT NOT NULL,
    vulnerability TEXT NOT NULL,
    UNIQUE (package, arch, vulnerability)
);
-- For the list of findings of one vulnerability.
CREATE INDEX finding_subjects_vulnerability ON finding_subjects (vulnerability);
INSERT INTO finding_subjects (package, arch, vulnerability)
SELECT DISTINCT package, arch, vulnerability FROM findings ORDER BY 1, 2, 3;

ALTER TABLE findings ADD COLUMN subject BIGINT;
DROP INDEX findings_open_key;
UPDATE findings f SET subject = s.id
FROM finding_subjects s
WHERE s.package = f.package AND s.arch = f.arch AND s.vulnerability = f.vulnerability;
ALTER TABLE findings ALTER COLUMN subject SET NOT NULL;
ALTER TABLE findings DROP COLUMN package, DROP COLUMN arch, DROP COLUMN vulnerability;
CREATE UNIQUE INDEX findings_open_key ON findings (host, subject) WHERE state = 'open';

-- A body no finding names (one a finding's new text replaced) has no finding to take its
-- subject from: it goes, as nothing refers to it; the server stores it again, with its
-- subject, if a finding names it again.
DELETE FROM finding_bodies b WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.body_id = b.id);
ALTER TABLE finding_bodies ADD COLUMN subject BIGINT REFERENCES finding_subjects (id);
UPDATE finding_bodies b SET subject = f.subject
FROM (SELECT body_id, min(subject) AS subject FROM findings GROUP BY body_id) f
WHERE f.body_id = b.id;
ALTER TABLE finding_bodies ALTER COLUMN subject SET NOT NULL;

-- The inserted findings' check: their hosts exist (once each), and each names a body that
-- exists and is of the finding's subject.
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
               WHERE NOT EXISTS (SELECT 1 FROM finding_bodies b
                                 WHERE b.id = f.body_id AND b.subject = f.subject)) THEN
        RAISE EXCEPTION 'a finding names a body that does not exist or is of another subject'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
-- And an updated finding whose host, body or subject changed.
CREATE OR REPLACE FUNCTION findings_check_changed_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = NEW.host) THEN
        RAISE EXCEPTION 'a finding names a host that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM finding_bodies b
                   WHERE b.id = NEW.body_id AND b.subject = NEW.subject) THEN
        RAISE EXCEPTION 'a finding names a body that does not exist or is of another subject'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER findings_references_updated ON findings;
CREATE TRIGGER findings_references_updated AFTER UPDATE OF host, body_id, subject ON findings
    FOR EACH ROW
    WHEN (OLD.host IS DISTINCT FROM NEW.host OR OLD.body_id IS DISTINCT FROM NEW.body_id
          OR OLD.subject IS DISTINCT FROM NEW.subject)
    EXECUTE FUNCTION findings_check_changed_references();
