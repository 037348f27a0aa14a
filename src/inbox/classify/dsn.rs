//! Delivery status notifications (RFC 3464, and RFC 6533's global form):
//! the fields of a `message/delivery-status` part.
//!
//! The part comes from the MIME parser as raw bytes, folded lines and all,
//! so it is read here: groups of fields separated by blank lines, the first
//! about the message (`Reporting-MTA`), each later one about a recipient
//! (`Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`).

use super::Report;
use super::text::{self, Status};
use crate::inbox::{Kind, MAX_ADDRESSES};

/// One recipient's group of fields.
#[derive(Debug, Default)]
struct Recipient {
    final_recipient: Option<String>,
    original_recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

impl Recipient {
    fn is_empty(&self) -> bool {
        self.final_recipient.is_none() && self.original_recipient.is_none() && self.action.is_none()
    }

    /// The address herald sent to: the original recipient when the report
    /// gives it (a forward or an alias makes the final one another
    /// address), else the final one.
    fn address(&self) -> Option<String> {
        self.original_recipient
            .as_deref()
            .and_then(text::address)
            .or_else(|| self.final_recipient.as_deref().and_then(text::address))
    }

    /// The status: the `Status` field, or one a more precise code in the
    /// diagnostic gives for the same class (`5.0.0` with "550 5.1.1"), or,
    /// without the field, what the diagnostic says.
    fn status(&self) -> Option<Status> {
        let field = self
            .status
            .as_deref()
            .and_then(|s| Status::parse(s.split_whitespace().next()?));
        let said = self.diagnostic.as_deref().and_then(text::status_of);
        match (field, said) {
            (Some(field), Some(said))
                if field.is_generic() && said.class() == field.class() && !said.is_generic() =>
            {
                Some(said)
            }
            (Some(field), _) => Some(field),
            (None, said) => said,
        }
    }
}

/// Reads a delivery-status part: a bounce if any recipient failed, else a
/// delay if any is delayed, else (delivered, relayed, expanded) an
/// automatic notice; `None` if it names no recipient's action.
pub fn read(body: &[u8]) -> Option<Report> {
    let recipients = recipients(&String::from_utf8_lossy(body));
    let action_is = |r: &&Recipient, what: &str| {
        r.action.as_deref().is_some_and(|a| {
            a.split_whitespace()
                .next()
                .is_some_and(|a| a.eq_ignore_ascii_case(what))
        })
    };
    let failed: Vec<&Recipient> = recipients.iter().filter(|r| action_is(r, "failed")).collect();
    let delayed: Vec<&Recipient> = recipients.iter().filter(|r| action_is(r, "delayed")).collect();
    let (kind, group) = if !failed.is_empty() {
        (Kind::Bounce, failed)
    } else if !delayed.is_empty() {
        (Kind::Delay, delayed)
    } else if recipients.iter().any(|r| r.action.is_some()) {
        return Some(Report::automatic());
    } else {
        return None;
    };
    let first = group[0];
    let status = first.status();
    let permanent = kind == Kind::Bounce && status.as_ref().is_some_and(Status::is_permanent);
    let mut addresses = Vec::new();
    for address in group.iter().filter_map(|r| r.address()) {
        if addresses.len() == MAX_ADDRESSES {
            break;
        }
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    Some(Report {
        kind,
        addresses,
        permanent: Some(permanent),
        status: status.map(Status::into_string),
        diagnostic: first
            .diagnostic
            .as_deref()
            .map(strip_type)
            .and_then(text::one_line),
    })
}

/// The recipients' groups, in order. A group starts after a blank line, or
/// at a second `Final-Recipient` where a generator left the blank line out.
fn recipients(body: &str) -> Vec<Recipient> {
    let mut recipients = Vec::new();
    let mut current = Recipient::default();
    for field in unfolded(body) {
        let Some((name, value)) = field else {
            if !current.is_empty() {
                recipients.push(std::mem::take(&mut current));
            }
            continue;
        };
        let value = value.trim().to_owned();
        let slot = match name.to_ascii_lowercase().as_str() {
            "final-recipient" => {
                if current.final_recipient.is_some() {
                    recipients.push(std::mem::take(&mut current));
                }
                &mut current.final_recipient
            }
            "original-recipient" => &mut current.original_recipient,
            "action" => &mut current.action,
            "status" => &mut current.status,
            "diagnostic-code" => &mut current.diagnostic,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    if !current.is_empty() {
        recipients.push(current);
    }
    recipients
}

/// The fields of `body`, each unfolded into one line (a line starting
/// with white space continues the one before), as `Some((name, value))`;
/// `None` for a blank line, which ends a group. A line that is not a field
/// is skipped.
fn unfolded(body: &str) -> impl Iterator<Item = Option<(&str, String)>> {
    let mut lines = body.lines().peekable();
    std::iter::from_fn(move || {
        loop {
            let line = lines.next()?;
            if line.trim().is_empty() {
                return Some(None);
            }
            if line.starts_with([' ', '\t']) {
                // A continuation whose field was skipped.
                continue;
            }
            let Some((name, first)) = line.split_once(':') else {
                continue;
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                continue;
            }
            let mut value = first.trim().to_owned();
            while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t']) && !l.trim().is_empty()) {
                value.push(' ');
                value.push_str(next.trim());
            }
            return Some(Some((name, value)));
        }
    })
}

/// A diagnostic without its type (`smtp; 550 …` → `550 …`).
fn strip_type(diagnostic: &str) -> &str {
    match diagnostic.split_once(';') {
        Some((kind, rest)) if !kind.is_empty() && kind.len() <= 20 && !kind.contains(' ') => rest,
        _ => diagnostic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_are_unfolded_and_groups_split() {
        let body = "Reporting-MTA: dns; mx.example.net\r\n\r\n\
                    Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.0.0\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <a@example.org>:\r\n    Recipient address rejected\r\n\r\n\
                    Final-Recipient: rfc822; b@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n";
        let report = read(body.as_bytes()).unwrap();
        assert_eq!(report.kind, Kind::Bounce);
        assert_eq!(report.addresses, ["a@example.org"]);
        assert_eq!(report.status.as_deref(), Some("5.1.1"));
        assert_eq!(report.permanent, Some(true));
        assert_eq!(
            report.diagnostic.as_deref(),
            Some("550 5.1.1 <a@example.org>: Recipient address rejected")
        );
    }

    #[test]
    fn no_action_is_no_report() {
        assert!(read(b"Reporting-MTA: dns; x.example\n\nFinal-Recipient: rfc822; a@b.example\n").is_none());
        assert!(read(b"").is_none());
    }
}
