-- A finding's JSON body (the finding with its advisories, versions and reason) is the same on
-- every host with the same package, versions and vulnerability: it is stored once, keyed by
-- the SHA-256 of its text, and findings refer to it. A fleet of similar hosts then writes a
-- small row per finding instead of some 1.2 KiB.
CREATE TABLE finding_bodies (
    id INTEGER PRIMARY KEY,
    -- SHA-256 of `body`; the bodies moved here from existing findings get theirs when the
    -- store opens (SQLite has no SHA-256 of its own), hence NULL allowed.
    digest BLOB,
    body TEXT NOT NULL
);

INSERT INTO finding_bodies (body) SELECT DISTINCT body FROM findings;
CREATE INDEX finding_bodies_body_0007 ON finding_bodies (body);
ALTER TABLE findings ADD COLUMN body_id INTEGER REFERENCES finding_bodies (id);
UPDATE findings SET body_id = (SELECT b.id FROM finding_bodies b WHERE b.body = findings.body);
DROP INDEX finding_bodies_body_0007;
ALTER TABLE findings DROP COLUMN body;
CREATE UNIQUE INDEX finding_bodies_digest ON finding_bodies (digest);
