//! Focal points and the distribution lists they are on.

use std::path::Path;
use std::sync::Arc;

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
    /// Where it was written; `None` for the sample reader that templates
    /// are checked with.
    pub origin: Option<Origin>,
}

/// Where a focal point was written: its list file and the line of its
/// address, for what `herald check` says about the address (suppressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Shared by every focal point of the file.
    pub file: Arc<Path>,
    pub line: usize,
}
