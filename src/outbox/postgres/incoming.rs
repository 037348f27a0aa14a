//! The PostgreSQL side of the process's mailbox: incoming messages, the
//! suppressions they cause, and the temporary failures counted against an
//! address (`outbox::incoming` has the types).

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::DbError;
use crate::key::AddressKey;
use crate::outbox::{Effect, IncomingRow, Lifted, Suppression, Taken};

pub(super) async fn has_sent_to(c: &Object, address: &AddressKey) -> Result<bool, DbError> {
    let _ = (c, address);
    unimplemented!()
}
pub(super) async fn seen(c: &Object, message_id: &str) -> Result<bool, DbError> {
    let _ = (c, message_id);
    unimplemented!()
}
pub(super) async fn take(
    c: &mut Object,
    row: &IncomingRow,
    effect: &Effect,
    now: Timestamp,
) -> Result<Taken, DbError> {
    let _ = (c, row, effect, now);
    unimplemented!()
}
pub(super) async fn since(c: &Object, since: Timestamp) -> Result<Vec<IncomingRow>, DbError> {
    let _ = (c, since);
    unimplemented!()
}
pub(super) async fn suppressions(c: &Object) -> Result<Vec<Suppression>, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn lift(c: &mut Object, address: &AddressKey, now: Timestamp) -> Result<Lifted, DbError> {
    let _ = (c, address, now);
    unimplemented!()
}
pub(super) async fn suppress_on_list(
    c: &mut Object,
    address: &AddressKey,
    list: &str,
    reason: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let _ = (c, address, list, reason, now);
    unimplemented!()
}
pub(super) async fn lift_on_list(
    c: &mut Object,
    address: &AddressKey,
    list: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let _ = (c, address, list, now);
    unimplemented!()
}
/// Suppresses the planned sends whose recipients are suppressed (all, or
/// those of `address`), in the caller's transaction; returns how many.
pub(super) async fn suppress_planned(
    tx: &tokio_postgres::Transaction<'_>,
    address: Option<&str>,
    now: i64,
) -> Result<usize, DbError> {
    let _ = (tx, address, now);
    unimplemented!()
}
