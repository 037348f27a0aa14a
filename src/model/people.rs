//! Focal points and the distribution lists they are on.

use lettre::Address;

use crate::model::{Lead, Zone};

/// A named distribution list.
#[derive(Debug, Clone)]
pub struct List {
    pub id: String,
    pub name: String,
    /// Lead times for everyone on the list, over the event's own.
    pub leads: Option<Vec<Lead>>,
}

/// A person who receives herald's mail.
#[derive(Debug, Clone)]
pub struct FocalPoint {
    pub name: String,
    pub email: Address,
    /// Mission or delegation ("Permanent Mission of Mexico").
    pub mission: Option<String>,
    /// "Excellency", "Ms.", "M." …
    pub honorific: Option<String>,
    /// A language tag ("fr", "es", "en-GB").
    pub language: String,
    /// The reader's own zone, to show event times in it as well.
    pub zone: Option<Zone>,
    pub lists: Vec<String>,
    /// The focal point's own lead times, over every other setting.
    pub leads: Option<Vec<Lead>>,
}
