-- The least a service's role needs (replace `app` with it, `jwe_session` with the schema):
-- the schema is made by another role (the store with migrate(true) run once as it, or a
-- team's own migration of 0001_init.sql), and the service connects with migrate(false).
-- The CLI needs the same. EXECUTE on jwe_session.revoke is PUBLIC's by default; it runs
-- with the caller's rights, hence INSERT/UPDATE and the sequence's USAGE.
GRANT USAGE ON SCHEMA jwe_session TO app;
GRANT SELECT ON jwe_session.meta TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jwe_session.revocations, jwe_session.devices TO app;
GRANT USAGE, SELECT ON SEQUENCE jwe_session.revocation_seq TO app;
