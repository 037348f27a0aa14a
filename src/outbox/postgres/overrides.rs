//! Readers' overrides and their requests for the operator, in PostgreSQL.

use deadpool_postgres::Object;
use jiff::Timestamp;

use super::DbError;
use crate::key::AddressKey;
use crate::outbox::{Asked, NewRequest, Override, Request};

pub(super) async fn all(c: &Object) -> Result<Vec<Override>, DbError> {
    let _ = c;
    unimplemented!()
}
pub(super) async fn of(c: &Object, address: &AddressKey) -> Result<Option<Override>, DbError> {
    let _ = (c, address);
    unimplemented!()
}
pub(super) async fn set(c: &Object, choice: &Override) -> Result<(), DbError> {
    let _ = (c, choice);
    unimplemented!()
}
pub(super) async fn remove(c: &Object, addresses: &[AddressKey]) -> Result<usize, DbError> {
    let _ = (c, addresses);
    unimplemented!()
}
pub(super) async fn add_request(
    c: &mut Object,
    request: &NewRequest,
    now: Timestamp,
) -> Result<Asked, DbError> {
    let _ = (c, request, now);
    unimplemented!()
}
pub(super) async fn requests(c: &Object, open_only: bool) -> Result<Vec<Request>, DbError> {
    let _ = (c, open_only);
    unimplemented!()
}
pub(super) async fn settle(c: &Object, id: i64, now: Timestamp) -> Result<bool, DbError> {
    let _ = (c, id, now);
    unimplemented!()
}
