//! A revocation as a row of the `revocations` table, both ways. A leaf: it knows
//! revocations and the table's columns, not the connection.

use jwe_session_core::{Revocation, Scope, UnixMicros, UnixTime};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

/// One row read back: the revocation, when the database took it (µs, its clock), and its
/// number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) revocation: Revocation,
    pub(crate) made: UnixTime,
    pub(crate) seq: i64,
}

/// The `revoke` function's arguments: one array per column.
#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) scopes: Vec<i16>,
    pub(crate) ids: Vec<String>,
    pub(crate) ats: Vec<Option<i64>>,
    pub(crate) untils: Vec<i64>,
}

impl Columns {
    /// The columns of `revs`, which must be valid (`Revocation::check`) and at most one
    /// per entry.
    pub(crate) fn of(revs: &[Revocation]) -> Self {
        let mut c = Self::default();
        for r in revs {
            let key = r.key();
            c.scopes.push(i16::from(key.scope().code()));
            c.ids.push(key.id().to_owned());
            c.ats.push(
                r.at()
                    .map(|at| i64::try_from(at.as_micros()).unwrap_or(i64::MAX)),
            );
            c.untils.push(secs(r.until()));
        }
        c
    }
}

/// Unix seconds as the table holds them (every valid moment fits).
pub(crate) fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// A row back as what it stores; `Err` with a description for a row this version cannot
/// read (a scope it does not know, a moment out of range), which the caller sets aside.
pub(crate) fn decode(row: &PgRow) -> Result<Stored, String> {
    let col = |e: sqlx::Error| e.to_string();
    let scope: i16 = row.try_get("scope").map_err(col)?;
    let id: String = row.try_get("id").map_err(col)?;
    let at: Option<i64> = row.try_get("at_us").map_err(col)?;
    let until: i64 = row.try_get("until_s").map_err(col)?;
    let made: i64 = row.try_get("made_us").map_err(col)?;
    let seq: i64 = row.try_get("seq").map_err(col)?;
    let named = format!(
        "scope {scope}, id {:?}",
        id.chars().take(80).collect::<String>()
    );
    let what = || named.clone();
    let scope = u8::try_from(scope)
        .ok()
        .and_then(Scope::from_code)
        .ok_or_else(|| format!("{}: a scope this version does not know", what()))?;
    let until = u64::try_from(until)
        .map(UnixTime::from_secs)
        .map_err(|_| format!("{}: until out of range", what()))?;
    let at = at
        .map(|a| u64::try_from(a).map(UnixMicros::from_micros))
        .transpose()
        .map_err(|_| format!("{}: cut-off out of range", what()))?;
    let revocation = match (scope, at) {
        (Scope::Session, None) => Revocation::Session { sid: id, until },
        (Scope::Subject, Some(at)) => Revocation::Subject { sub: id, at, until },
        (Scope::All, Some(at)) => Revocation::All { at, until },
        (Scope::Tokens, Some(at)) => Revocation::Tokens { sub: id, at, until },
        _ => return Err(format!("{}: a cut-off where none belongs, or none", what())),
    };
    revocation.check().map_err(|e| format!("{}: {e}", what()))?;
    let made = UnixTime::from_secs(u64::try_from(made).unwrap_or(0) / 1_000_000);
    Ok(Stored {
        revocation,
        made,
        seq,
    })
}

/// [`decode`], or `None` after an error naming the row: one this version cannot read is
/// set aside, never taken for another scope, and the rest go on.
pub(crate) fn decode_or_set_aside(row: &PgRow) -> Option<Stored> {
    match decode(row) {
        Ok(s) => Some(s),
        Err(why) => {
            tracing::error!(row = %why, "revocation table: a row this version cannot read is set aside");
            None
        }
    }
}
