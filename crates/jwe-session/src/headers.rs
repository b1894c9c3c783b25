//! Request headers that must appear at most once: a proof (`DPoP`,
//! `Secure-Session-Response`) sent twice is refused, never resolved by picking one.

use http::{HeaderMap, HeaderName};

/// The header sent more than once, or with a value that is not visible ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NotSingle;

/// The value of `name`: `Ok(None)` when absent, `Err` when repeated or not text.
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, NotSingle> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| NotSingle),
        (Some(_), Some(_)) => Err(NotSingle),
    }
}
