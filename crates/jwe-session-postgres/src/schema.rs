//! The schema: its name, the versioned SQL that makes it (the files in `sql/`, shipped in
//! the crate), and every statement the store runs, written once with the schema's name.

use std::time::Duration;

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgPool, SqlSafeStr as _, SqlStr};

use crate::conn::bounded;
use crate::error::BackendError;

/// The default schema name (and `NOTIFY` channel).
pub const DEFAULT_SCHEMA: &str = "jwe_session";

/// The schema format this version reads and writes.
pub const FORMAT: u32 = 1;

/// Each format's SQL, in order; `jwe_session` in it is the schema's name.
const MIGRATIONS: [(u32, &str); 1] = [(1, include_str!("../sql/0001_init.sql"))];

/// Whether `name` is a schema name the store accepts: a plain lower-case SQL identifier,
/// so it needs no quoting anywhere (and makes a valid channel name).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 48
}

/// Every statement the store runs, with the schema's name in place.
/// Each is built from the schema's name, checked by [`valid_name`] (a plain identifier),
/// and bind parameters only: nothing else is ever spliced in.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) schema: String,
    pub(crate) revoke: SqlStr,
    pub(crate) state: SqlStr,
    pub(crate) since: SqlStr,
    pub(crate) cutoffs: SqlStr,
    pub(crate) recent: SqlStr,
    pub(crate) points: SqlStr,
    pub(crate) prune: SqlStr,
    pub(crate) format: SqlStr,
    pub(crate) device_insert: SqlStr,
    pub(crate) device_lock: SqlStr,
    pub(crate) device_update: SqlStr,
    pub(crate) device_remove: SqlStr,
    pub(crate) devices_of: SqlStr,
    pub(crate) devices_prune: SqlStr,
}

const COLUMNS: &str = "scope, id, at_us, until_s, made_us, seq";

/// A statement built here from a checked schema name (see [`Sql`]).
fn stmt(text: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Result<Self, BackendError> {
        if !valid_name(schema) {
            return Err(BackendError::InvalidSchemaName {
                name: schema.to_owned(),
            });
        }
        let s = schema;
        Ok(Self {
            schema: s.to_owned(),
            revoke: stmt(format!(
                "SELECT changed, last_seq FROM {s}.revoke($1, $2, $3, $4, $5)"
            )),
            state: stmt(format!(
                "SELECT (SELECT value FROM {s}.meta WHERE name = 'epoch'), \
                 (SELECT coalesce(max(seq), 0) FROM {s}.revocations), \
                 (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
            )),
            since: stmt(format!(
                "SELECT {COLUMNS} FROM {s}.revocations WHERE seq > $1 ORDER BY seq LIMIT $2"
            )),
            cutoffs: stmt(format!(
                "SELECT {COLUMNS} FROM {s}.revocations WHERE scope <> 0 AND until_s > $1"
            )),
            recent: stmt(format!(
                "SELECT {COLUMNS} FROM {s}.revocations \
                 WHERE scope = 0 AND made_us > $1 AND until_s > $2"
            )),
            points: stmt(format!(
                "SELECT {COLUMNS} FROM {s}.revocations \
                 WHERE (scope = 0 AND id = $1) OR (scope = 1 AND id = $2) \
                 OR (scope = 2 AND id = '')"
            )),
            // The newest row stays, expired or not: the table's largest `seq` only moves
            // forward, which is how a follower notices a database that went back in time.
            prune: stmt(format!(
                "DELETE FROM {s}.revocations WHERE (scope, id) IN (\
                 SELECT scope, id FROM {s}.revocations WHERE until_s <= $1 \
                 AND seq < (SELECT max(seq) FROM {s}.revocations) LIMIT $2)"
            )),
            format: stmt(format!("SELECT value FROM {s}.meta WHERE name = 'format'")),
            device_insert: stmt(format!(
                "INSERT INTO {s}.devices (sid, sub, until_s, record) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sid) DO NOTHING"
            )),
            device_lock: stmt(format!(
                "SELECT record FROM {s}.devices WHERE sid = $1 FOR UPDATE"
            )),
            device_update: stmt(format!(
                "UPDATE {s}.devices SET until_s = $2, record = $3 WHERE sid = $1"
            )),
            device_remove: stmt(format!(
                "DELETE FROM {s}.devices WHERE sid = $1 AND sub = $2"
            )),
            devices_of: stmt(format!(
                "SELECT record FROM {s}.devices WHERE sub = $1 AND until_s > $2"
            )),
            devices_prune: stmt(format!(
                "DELETE FROM {s}.devices WHERE sid IN (\
                 SELECT sid FROM {s}.devices WHERE until_s <= $1 LIMIT $2)"
            )),
        })
    }

    /// The `NOTIFY` channel: the schema's name.
    pub(crate) fn channel(&self) -> &str {
        &self.schema
    }
}

/// Creates the schema `schema` in the pool's database, or brings it to this version's
/// format: the SQL files of `sql/` in order, in one transaction, under an advisory lock
/// (instances starting together take turns), each only once. Safe to run at every start.
/// The role needs `CREATE` on the database (or an existing schema it owns).
///
/// # Errors
/// [`BackendError::Schema`] if the schema has a newer format than this version knows (it
/// is left as it is); [`BackendError::InvalidSchemaName`]; [`BackendError::Unavailable`]
/// or [`BackendError::Timeout`] if PostgreSQL refused or did not answer (nothing changed).
///
/// # Example
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> Result<(), jwe_session_postgres::BackendError> {
/// // In a deployment step, as the schema's owner; services then connect with
/// // `.migrate(false)` as a role holding only the grants of `sql/grants.sql`.
/// jwe_session_postgres::migrate(&pool, jwe_session_postgres::DEFAULT_SCHEMA).await?;
/// # Ok(()) }
/// ```
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<(), BackendError> {
    migrate_within(pool, schema, Duration::from_secs(60)).await
}

pub(crate) async fn migrate_within(
    pool: &PgPool,
    schema: &str,
    timeout: Duration,
) -> Result<(), BackendError> {
    let sql = Sql::new(schema)?;
    bounded(timeout, async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{schema}.migrate"))
            .execute(&mut *tx)
            .await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(format!("{schema}.meta"))
            .fetch_one(&mut *tx)
            .await?;
        let found = match exists {
            None => 0,
            Some(_) => parse_format(
                sqlx::query_scalar::<_, String>(sql.format.clone())
                    .fetch_optional(&mut *tx)
                    .await?,
            ),
        };
        if found > FORMAT {
            return Ok(Err(BackendError::Schema {
                schema: schema.to_owned(),
                found: Some(found),
                expected: FORMAT,
            }));
        }
        for (format, text) in MIGRATIONS {
            if format > found {
                sqlx::raw_sql(AssertSqlSafe(text.replace(DEFAULT_SCHEMA, schema)))
                    .execute(&mut *tx)
                    .await?;
                tracing::info!(schema, format, "revocation schema migrated");
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Ok(()))
    })
    .await?
}

/// A format number as stored; 0 (none) for what is not one.
fn parse_format(value: Option<String>) -> u32 {
    value.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Checks that the schema exists in this version's format.
pub(crate) async fn check_format(
    pool: &PgPool,
    sql: &Sql,
    timeout: Duration,
) -> Result<(), BackendError> {
    let found = bounded(timeout, async {
        match sqlx::query_scalar::<_, String>(sql.format.clone())
            .fetch_optional(pool)
            .await
        {
            Ok(v) => Ok(Some(parse_format(v))),
            // 42P01 undefined_table, 3F000 invalid_schema_name: there is no schema.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P01" | "3F000")) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    match found {
        Some(FORMAT) => Ok(()),
        found => Err(BackendError::Schema {
            schema: sql.schema.clone(),
            found,
            expected: FORMAT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["jwe_session", "_x", "app1_sessions", &"a".repeat(48)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "a-b",
            "a.b",
            "a b",
            "x\"; drop table t; --",
            "é",
            &"a".repeat(49),
        ] {
            assert!(!valid_name(bad), "{bad}");
            assert!(matches!(
                Sql::new(bad),
                Err(BackendError::InvalidSchemaName { .. })
            ));
        }
    }

    /// The shipped SQL names the schema only as `jwe_session`, so a renamed schema is
    /// renamed everywhere (tables, sequence, function, lock, channel).
    #[test]
    fn the_migration_renames_whole() {
        let renamed = MIGRATIONS[0].1.replace(DEFAULT_SCHEMA, "other_app");
        assert!(!renamed.contains("jwe_session"));
        assert!(renamed.contains("pg_notify('other_app'"));
        assert!(renamed.contains("CREATE SCHEMA IF NOT EXISTS other_app;"));
        assert_eq!(parse_format(Some("1".into())), 1);
        assert_eq!(parse_format(Some("x".into())), 0);
        assert_eq!(parse_format(None), 0);
    }
}
