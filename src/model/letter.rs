//! Letters (circulars): a cover letter sent to lists, at a set time or on
//! demand, usually enclosing a roadmap.

use std::collections::BTreeMap;

use jiff::ZonedDateTime;

use crate::model::Attachment;

/// One circular.
#[derive(Debug, Clone)]
pub struct Letter {
    pub id: String,
    /// The template family ("cover-letter").
    pub template: String,
    pub lists: Vec<String>,
    /// The roadmap whose table the letter carries, if any.
    pub roadmap: Option<String>,
    /// When it goes out; `None` means only on demand.
    pub send_at: Option<ZonedDateTime>,
    pub signatory: Option<String>,
    pub signatory_title: Option<String>,
    /// The body by language; the default language is always present.
    pub body: BTreeMap<String, String>,
    /// Files every copy of the letter carries.
    pub attachments: Vec<Attachment>,
}
