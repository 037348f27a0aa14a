//! What readers choose for themselves, kept in the outbox's file (the
//! state directory), never in the configuration, which herald does not
//! write: overrides of a focal point's language and time zone, and
//! requests for the operator ("my successor is …").
//!
//! These are storage types: what an override changes in the plan is the
//! scheduler's business (`scheduler::overlay`), and a request is only
//! ever shown to the operator, never acted on.

use jiff::Timestamp;

use crate::key::AddressKey;

/// A reader's choice of language and time zone, over what the
/// configuration says of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub address: AddressKey,
    /// A language code (`fr`); `None`: the configuration's.
    pub language: Option<String>,
    /// An IANA time zone name (`Asia/Tokyo`); `None`: the configuration's.
    pub zone: Option<String>,
    /// When the reader last chose.
    pub since: Timestamp,
}

impl Override {
    /// Whether it overrides nothing (setting such an override removes it).
    pub fn is_empty(&self) -> bool {
        self.language.is_none() && self.zone.is_none()
    }
}

/// A reader's request to the operator: someone else is now the focal point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Who asks (a focal point).
    pub from: AddressKey,
    /// The list they asked about; `None`: every list they are on.
    pub list: Option<String>,
    pub successor_name: String,
    pub successor_email: String,
}

/// A request as kept: open until the operator settles it (by hand, in the
/// configuration, then `herald requests settle ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    pub from: AddressKey,
    pub list: Option<String>,
    pub successor_name: String,
    pub successor_email: String,
    pub asked: Timestamp,
    pub settled: Option<Timestamp>,
}

/// What asking did: the request's id, and whether it is new (the same
/// request still open is not recorded twice: a reader who submits the
/// form again gets the first one's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub id: i64,
    pub new: bool,
}
