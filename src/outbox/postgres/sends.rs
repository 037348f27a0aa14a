//! The sends, their attempts, the calendar state and saved values: the
//! SQLite outbox's statements in PostgreSQL's dialect. (Claims, outcomes and
//! leases are `leases.rs`'s.)

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::DbError;
use crate::outbox::{CalendarRow, Changes, Counts, Entry, Pace, State};

pub(super) async fn entries(c: &Object) -> Result<Vec<Entry>, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn entries_for(c: &Object, keys: &[String]) -> Result<Vec<Entry>, DbError> {
    let _ = (c, keys);
    unimplemented!()
}
pub(super) async fn entries_in(c: &Object, state: State) -> Result<Vec<Entry>, DbError> {
    let _ = (c, state);
    unimplemented!()
}
pub(super) async fn entries_under(c: &Object, prefix: &str) -> Result<Vec<Entry>, DbError> {
    let _ = (c, prefix);
    unimplemented!()
}
pub(super) async fn planned_until(c: &Object) -> Result<Option<Timestamp>, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn apply(c: &mut Object, changes: &Changes, now: Timestamp) -> Result<usize, DbError> {
    let _ = (c, changes, now);
    unimplemented!()
}
pub(super) async fn departures_since(c: &Object, since: Timestamp) -> Result<Vec<Timestamp>, DbError> {
    let _ = (c, since);
    unimplemented!()
}
pub(super) async fn set_pace(c: &mut Object, pace: &[Pace]) -> Result<(), DbError> {
    let _ = (c, pace);
    unimplemented!()
}
pub(super) async fn clear_releases(c: &Object) -> Result<usize, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn revive_too_late(
    c: &mut Object,
    since: Timestamp,
    now: Timestamp,
) -> Result<usize, DbError> {
    let _ = (c, since, now);
    unimplemented!()
}
pub(super) async fn retry_failed(c: &Object, key: Option<&str>, now: Timestamp) -> Result<usize, DbError> {
    let _ = (c, key, now);
    unimplemented!()
}
pub(super) async fn counts(c: &Object) -> Result<Counts, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn pending(c: &Object) -> Result<usize, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn suppressed_from(c: &Object, now: Timestamp) -> Result<usize, DbError> {
    let _ = (c, now);
    unimplemented!()
}
pub(super) async fn calendar_rows(c: &Object) -> Result<Vec<CalendarRow>, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn entry_by_token(c: &Object, token: &str) -> Result<Option<Entry>, DbError> {
    let _ = (c, token);
    unimplemented!()
}
pub(super) async fn settled_since(c: &Object, since: Timestamp) -> Result<Vec<Entry>, DbError> {
    let _ = (c, since);
    unimplemented!()
}
pub(super) async fn get_value(c: &Object, name: &str) -> Result<Option<String>, DbError> {
    let _ = (c, name);
    unimplemented!()
}
pub(super) async fn set_value(c: &Object, name: &str, value: &str) -> Result<(), DbError> {
    let _ = (c, name, value);
    unimplemented!()
}
pub(super) async fn attempts(
    c: &Object,
    key: &str,
) -> Result<Vec<(Timestamp, String, Option<String>)>, DbError> {
    let _ = (c, key);
    unimplemented!()
}
