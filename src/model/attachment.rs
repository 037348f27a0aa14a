//! Files that letters and reminders carry (a signed PDF, a draft), read by
//! `config` once per load and shared by every message that carries them.
//!
//! The bytes are an `Arc<[u8]>`: a burst of ten thousand messages with the
//! same attachment holds one copy of the file, not one per recipient.
//! Encoding them into a message is `render::message`'s part.

use std::path::PathBuf;
use std::sync::Arc;

/// One attached file, as read at load time.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The file's name as readers see it (its base name, any characters).
    pub name: String,
    /// The path the configuration wrote, relative to its directory, for
    /// messages to the operator.
    pub path: PathBuf,
    /// The MIME type, from the file's content and name ("application/pdf").
    pub content_type: String,
    /// The file's bytes, shared by every message that carries it.
    pub bytes: Arc<[u8]>,
}

impl Attachment {
    /// The size of the attachment's part in a message: base64 (4 bytes for
    /// every 3, in lines of 76 characters and CRLF) and its headers.
    pub fn encoded_size(&self) -> u64 {
        let base64 = (self.bytes.len() as u64).div_ceil(3) * 4;
        let line_ends = base64.div_ceil(76) * 2;
        // Content-Type, Content-Disposition with the name twice (the
        // percent-encoded form is at most three times as long), the
        // encoding, and the boundary line.
        let headers = 200 + 4 * self.name.len() as u64;
        base64 + line_ends + headers
    }
}

/// Which reminders of an event carry its attachments (letters always carry
/// theirs, notices never do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachTo {
    /// Only the first reminder each focal point gets: the one of its
    /// longest lead.
    #[default]
    First,
    /// Every reminder.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_size_counts_base64_lines_and_headers() {
        let attachment = |len: usize| Attachment {
            name: "a.pdf".into(),
            path: "files/a.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: vec![0u8; len].into(),
        };
        // 57 bytes are one full line of 76 characters.
        assert_eq!(attachment(57).encoded_size(), 76 + 2 + 220);
        assert_eq!(attachment(58).encoded_size(), 80 + 4 + 220);
        // A 2 MB file grows by a third and its line ends.
        let two_mb = attachment(2_000_000).encoded_size();
        assert!((2_701_000..2_740_000).contains(&two_mb), "{two_mb}");
    }
}
