-- A finding's JSON body (the finding with its advisories, versions and reason) is the same on
-- every host with the same package, versions and vulnerability: it is stored once, keyed by
-- the SHA-256 of its text, and findings refer to it. A fleet of similar hosts then writes a
-- small row per finding instead of some 1.2 KiB.
CREATE TABLE finding_bodies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest BYTEA NOT NULL UNIQUE,
    body TEXT NOT NULL
);

INSERT INTO finding_bodies (digest, body)
SELECT DISTINCT sha256(convert_to(body, 'UTF8')), body FROM findings;
ALTER TABLE findings ADD COLUMN body_id BIGINT REFERENCES finding_bodies (id);
UPDATE findings f SET body_id = b.id
FROM finding_bodies b WHERE b.digest = sha256(convert_to(f.body, 'UTF8'));
ALTER TABLE findings ALTER COLUMN body_id SET NOT NULL;
ALTER TABLE findings DROP COLUMN body;
