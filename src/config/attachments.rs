//! `attachments = ["files/…"]` on letters, roadmaps and events, and an
//! event's `attach_to`: each file checked to be inside the configuration
//! directory, read once per load, and typed from its content and name.
//!
//! A file is read once however many letters and events list it, and every
//! message that carries it shares those bytes (see `model::Attachment`); a
//! reload reads it again. A path is resolved on the file system (symbolic
//! links followed) before it is compared with the configuration directory,
//! so a link pointing outside is refused like `../x`.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use crate::config::{Loader, normalize, raw};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::model::{AttachTo, Attachment};

/// What the text, HTML, invitation and headers of a message add to its
/// attachments, at most, for the size warning: templates are at most
/// 32 KiB each, and an invitation a few KiB.
const REST_OF_MESSAGE: u64 = 64 * 1024;

/// The attachments read so far in one load, by canonical path.
#[derive(Default)]
pub(super) struct ReadAttachments(HashMap<PathBuf, Attachment>);

impl Loader<'_> {
    /// The files `list` names, in its order; each refusal is reported at
    /// the path's place in `src`. Warns when a message carrying them all
    /// would be over `max_message_size`.
    pub(super) fn attachments_of(
        &mut self,
        src: &SourceFile,
        list: &Spanned<Vec<raw::Text>>,
        d: &mut Vec<Diagnostic>,
    ) -> Vec<Attachment> {
        let mut attachments = Vec::new();
        for text in list.get_ref() {
            match self.attachment(text.get_ref()) {
                Ok(attachment) => attachments.push(attachment),
                Err(message) => d.push(src.at(text.span(), message)),
            }
        }
        let size: u64 = attachments.iter().map(Attachment::encoded_size).sum();
        if let Some(limit) = self.max_message_size
            && !attachments.is_empty()
            && size + REST_OF_MESSAGE > limit
        {
            self.warnings.push(src.at(
                list.span(),
                format!(
                    "a message carrying these attachments would be about {} (the files encoded as base64, {}, and the rest of the message), over max_message_size ({}) in [delivery] of herald.toml: relays refuse messages over their limit; send a link instead, or raise max_message_size if the relay takes them",
                    megabytes(size + REST_OF_MESSAGE),
                    megabytes(size),
                    megabytes(limit),
                ),
            ));
        }
        attachments
    }

    /// One file, read once per load.
    fn attachment(&mut self, written: &str) -> Result<Attachment, String> {
        let relative = Path::new(written);
        if written.trim().is_empty() {
            return Err("an attachment's path is empty: name a file under the configuration directory, like \"files/letter.pdf\"".to_owned());
        }
        if relative.is_absolute() {
            return Err(format!(
                "attachment {written:?} is an absolute path: attachments are files under the configuration directory {}; copy the file there (into files/, say) and write its path relative to it, like \"files/letter.pdf\"",
                self.dir.display()
            ));
        }
        let joined = self.dir.join(relative);
        if climbs_out(relative) {
            return Err(outside(written, &self.dir, &normalize(&joined)));
        }
        let canonical = match self.files.canonicalize(&joined) {
            Ok(canonical) => canonical,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "attachment {written:?}: no such file ({} does not exist); paths are relative to the configuration directory",
                    joined.display()
                ));
            }
            Err(err) => return Err(format!("attachment {written:?} cannot be read: {err}")),
        };
        let dir = match &self.canonical_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = self
                    .files
                    .canonicalize(&self.dir)
                    .unwrap_or_else(|_| self.dir.clone());
                self.canonical_dir = Some(dir.clone());
                dir
            }
        };
        if !canonical.starts_with(&dir) {
            return Err(outside(written, &self.dir, &canonical));
        }
        if let Some(read) = self.attachments.0.get(&canonical) {
            return Ok(Attachment {
                path: relative.to_owned(),
                ..read.clone()
            });
        }
        if !self.files.is_file(&canonical) {
            return Err(format!("attachment {written:?} is not a file"));
        }
        let bytes = self.files.read(&canonical).map_err(|err| {
            format!("attachment {written:?} cannot be read: {err}; herald must be able to read it (under systemd, as the user herald)")
        })?;
        // The name readers see is the file's own, not a symbolic link's.
        let name = relative
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| written.to_owned());
        let attachment = Attachment {
            content_type: content_type(&name, &bytes).to_owned(),
            name,
            path: relative.to_owned(),
            bytes: Arc::from(bytes),
        };
        self.attachments.0.insert(canonical, attachment.clone());
        Ok(attachment)
    }
}

/// Whether a relative path's `..` climb above where it starts, before
/// any symbolic link is looked at: `files/../x` stays, `../x` does not.
fn climbs_out(relative: &Path) -> bool {
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

fn outside(written: &str, dir: &Path, resolved: &Path) -> String {
    format!(
        "attachment {written:?} is outside the configuration directory {} (it resolves to {}): herald only sends files under it; copy the file there (into files/, say) and name it relative to the directory",
        dir.display(),
        resolved.display()
    )
}

/// `attach_to`: which reminders carry the event's attachments.
pub(super) fn attach_to(value: &str) -> Result<AttachTo, String> {
    match value {
        "first" => Ok(AttachTo::First),
        "all" => Ok(AttachTo::All),
        other => Err(format!(
            "unknown attach_to {other:?}: use \"first\" (only the first reminder each focal point gets, the default) or \"all\" (every reminder)"
        )),
    }
}

/// "2.7 MB", in the decimal megabytes relays state their limits in.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// The MIME type of a file: from its content when it has a signature (a
/// PDF is a PDF whatever it is called), from its name when the content
/// says nothing (text) or only names a container that several formats
/// share (ZIP holds .docx and .odt; without its `std` feature, `infer`
/// calls every OLE2 file, .xls and .ppt too, a Word document).
pub(super) fn content_type(name: &str, bytes: &[u8]) -> &'static str {
    let by_name = by_extension(name);
    match infer::get(bytes).map(|kind| kind.mime_type()) {
        Some("application/zip" | "application/msword") if by_name.is_some() => by_name.unwrap_or_default(),
        Some(by_content) => by_content,
        None => by_name.unwrap_or(if std::str::from_utf8(bytes).is_ok() {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        }),
    }
}

/// The types of the documents circulated with letters, by extension; the
/// others are known by their content.
fn by_extension(name: &str) -> Option<&'static str> {
    let extension = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "rtf" => "application/rtf",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "ics" => "text/calendar; charset=utf-8",
        "zip" => "application/zip",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_and_the_name_tells_containers_and_text_apart() {
        assert_eq!(content_type("draft.bin", b"%PDF-1.7\n..."), "application/pdf");
        // A PDF named .txt is still a PDF.
        assert_eq!(content_type("draft.txt", b"%PDF-1.7\n..."), "application/pdf");
        assert_eq!(
            content_type("notes.txt", b"Dear colleagues"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type("notes", b"Dear colleagues"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("table.csv", b"a,b\n"), "text/csv; charset=utf-8");
        assert_eq!(
            content_type("blob", &[0xff, 0xfe, 0x00, 0x81]),
            "application/octet-stream"
        );
        let ole2 = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0];
        assert_eq!(content_type("budget.xls", &ole2), "application/vnd.ms-excel");
        assert_eq!(content_type("x", &ole2), "application/msword");
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00";
        assert_eq!(
            content_type("draft.odt", zip),
            "application/vnd.oasis.opendocument.text"
        );
        assert_eq!(content_type("archive", zip), "application/zip");
    }

    #[test]
    fn parent_directories_may_not_climb_out() {
        assert!(!climbs_out(Path::new("files/letter.pdf")));
        assert!(!climbs_out(Path::new("files/../files/letter.pdf")));
        assert!(!climbs_out(Path::new("./files/letter.pdf")));
        assert!(climbs_out(Path::new("../letter.pdf")));
        assert!(climbs_out(Path::new("files/../../letter.pdf")));
    }

    #[test]
    fn attach_to_takes_first_or_all() {
        assert_eq!(attach_to("first"), Ok(AttachTo::First));
        assert_eq!(attach_to("all"), Ok(AttachTo::All));
        assert!(attach_to("last").is_err_and(|message| message.contains("\"first\"")));
    }
}
