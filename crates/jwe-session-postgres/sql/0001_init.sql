-- jwe-session-postgres, schema format 1.
--
-- Run by the store itself (PgStoreBuilder::migrate, the default), inside one transaction
-- under an advisory lock, with `jwe_session` replaced by the configured schema name; or
-- by a team's own migration tool, as it is, for the default schema. Idempotent: running
-- it again changes nothing.
--
-- Every name below that reads `jwe_session` is the schema (and the NOTIFY channel).

CREATE SCHEMA IF NOT EXISTS jwe_session;

-- `format`: this file's number; `epoch`: a random id made once, so an instance notices a
-- database that was replaced (dropped and made again) and writes back what it knows.
CREATE TABLE IF NOT EXISTS jwe_session.meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- Every change to a revocation takes the next number: followers read `seq > last seen`.
CREATE SEQUENCE IF NOT EXISTS jwe_session.revocation_seq AS bigint;

-- One row per revocation entry: a session (scope 0, id = sid), a subject's sessions
-- (1, id = sub), everyone's (2, id = ''), a claims refresh (3, id = sub). `at_us` is the
-- cut-off in µs (none for a session); `until_s` when the row may go (Unix s); `made_us`
-- when the database last changed it, by its own clock (readers keep a session
-- revocation for their window from then).
CREATE TABLE IF NOT EXISTS jwe_session.revocations (
    scope   smallint NOT NULL CHECK (scope BETWEEN 0 AND 3),
    id      text     NOT NULL,
    at_us   bigint   CHECK (at_us BETWEEN 0 AND 253402300799999999),
    until_s bigint   NOT NULL CHECK (until_s BETWEEN 0 AND 253402300799),
    made_us bigint   NOT NULL,
    seq     bigint   NOT NULL,
    PRIMARY KEY (scope, id),
    CHECK ((scope = 0) = (at_us IS NULL)),
    CHECK (scope <> 2 OR id = '')
);
CREATE UNIQUE INDEX IF NOT EXISTS revocations_seq ON jwe_session.revocations (seq);
CREATE INDEX IF NOT EXISTS revocations_until ON jwe_session.revocations (until_s);
CREATE INDEX IF NOT EXISTS revocations_made ON jwe_session.revocations (made_us) WHERE scope = 0;

-- The session registry ("your devices"): one row per live session, the record as the
-- core's strict JSON (`SessionRecord::to_json`).
CREATE TABLE IF NOT EXISTS jwe_session.devices (
    sid     text   PRIMARY KEY,
    sub     text   NOT NULL,
    until_s bigint NOT NULL,
    record  text   NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_sub ON jwe_session.devices (sub, until_s);
CREATE INDEX IF NOT EXISTS devices_until ON jwe_session.devices (until_s);

-- Records revocations (parallel arrays, at most one per entry): merges each into its row
-- (the later cut-off and the later `until` win: `Revocation::absorb`, the rule of every
-- store), numbers what changed, and announces the last number on the channel, in the
-- caller's transaction. Writers take one advisory lock, so numbers commit in order and a
-- follower reading `seq > last` never skips one committed late. A repeat changes nothing
-- and announces nothing. Entries whose `until` is not after `p_now` are skipped.
CREATE OR REPLACE FUNCTION jwe_session.revoke(
    p_scopes smallint[], p_ids text[], p_ats bigint[], p_untils bigint[], p_now bigint,
    OUT changed bigint, OUT last_seq bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    stamp bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('jwe_session.revocations'));
    stamp := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    WITH up AS (
        INSERT INTO jwe_session.revocations AS r (scope, id, at_us, until_s, made_us, seq)
        SELECT i.scope, i.id, i.at_us, i.until_s, stamp, nextval('jwe_session.revocation_seq')
        FROM unnest(p_scopes, p_ids, p_ats, p_untils) AS i (scope, id, at_us, until_s)
        WHERE i.until_s > p_now
        ON CONFLICT (scope, id) DO UPDATE
            SET at_us = GREATEST(r.at_us, EXCLUDED.at_us),
                until_s = GREATEST(r.until_s, EXCLUDED.until_s),
                made_us = EXCLUDED.made_us,
                seq = EXCLUDED.seq
            WHERE EXCLUDED.until_s > r.until_s OR EXCLUDED.at_us > r.at_us
        RETURNING r.seq
    )
    SELECT count(*), coalesce(max(up.seq), 0) INTO changed, last_seq FROM up;
    IF changed > 0 THEN
        PERFORM pg_notify('jwe_session', last_seq::text);
    END IF;
END
$fn$;

INSERT INTO jwe_session.meta (name, value) VALUES ('format', '1')
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO jwe_session.meta (name, value)
    VALUES ('epoch', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (name) DO NOTHING;
