-- Appending to the audit chain in one statement. Every changing transaction of every server
-- locks the chain's head from its first append to its commit, so the time between the two is
-- what bounds how many changes a second the whole deployment makes. Reading the head, hashing
-- in the server and writing the event back took two round trips an event, and an upload's two
-- events four: with the server busy, most of the head's locked time was spent waiting for the
-- server's next message (`pg_stat_activity` sampled during a fleet run: 405 of 680 samples
-- were backends queued on the head). This function locks the head, chains the given events
-- after it and moves the head, all inside PostgreSQL.
--
-- The hash is `patchwarden_core::audit::chain_hash_canonical`'s: SHA-256 of
-- 'patchwarden-audit-v1' and a newline, the sequence number in decimal, a newline, the
-- previous hash (hex), a newline, and the entry's canonical JSON, as UTF-8, written in hex.
-- The server sends each entry's canonical text (`canonical`) beside the JSON it stores
-- (`entries`), and `patchwarden audit verify` recomputes every hash from the stored entries,
-- so a difference between the two computations cannot pass unnoticed.
-- SQLite's migration of the same name changes nothing: its single writer appends in Rust.
CREATE FUNCTION audit_append(
    ats BIGINT[],
    actions TEXT[],
    objects TEXT[],
    entries TEXT[],
    canonical TEXT[]
) RETURNS TABLE (event_seq BIGINT, event_prev_hash TEXT, event_hash TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    head_seq BIGINT;
    head_hash TEXT;
    i INTEGER;
BEGIN
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_head h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit head row is missing';
    END IF;
    FOR i IN 1 .. coalesce(array_length(entries, 1), 0) LOOP
        event_seq := head_seq + 1;
        event_prev_hash := CASE WHEN head_seq = 0
            THEN '0000000000000000000000000000000000000000000000000000000000000000'
            ELSE head_hash END;
        event_hash := encode(sha256(convert_to(
            'patchwarden-audit-v1' || E'\n' || event_seq::text || E'\n' || event_prev_hash
                || E'\n' || canonical[i],
            'UTF8')), 'hex');
        INSERT INTO audit_events (seq, at, action, object, entry, prev_hash, hash)
        VALUES (event_seq, ats[i], actions[i], objects[i], entries[i], event_prev_hash,
                event_hash);
        head_seq := event_seq;
        head_hash := event_hash;
        RETURN NEXT;
    END LOOP;
    UPDATE audit_head SET seq = head_seq, hash = head_hash WHERE id = 1;
END;
$$;
