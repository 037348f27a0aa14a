//! herald.toml's `[inbox]` -> [`InboxSettings`]: the process's mailbox (a
//! maildir, or an IMAP account with its password from a file or a systemd
//! credential, as for SMTP), its folders, how often to look, and the
//! bounce policy.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::config::delivery::{host_of, is_loopback};
use crate::config::layered::Layers;
use crate::config::spanned::check;
use crate::config::{Loader, raw, secrets, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::inbox::settings::{
    DEFAULT_IMAP_TIMEOUT, DEFAULT_POLL, DEFAULT_PROCESSED, DEFAULT_UNREADABLE, ImapSettings, InboxSettings,
    Mailbox,
};
use crate::send::Security;

/// Temporary failures that suppress an address, unless `bounce_threshold` says.
const DEFAULT_BOUNCE_THRESHOLD: u32 = 3;

/// The period they are counted over, unless `bounce_period` says.
const DEFAULT_BOUNCE_PERIOD: jiff::SignedDuration = jiff::SignedDuration::from_hours(14 * 24);

/// The shortest poll: a server is not to be hammered.
const SHORTEST_POLL: Duration = Duration::from_secs(10);

impl Loader<'_> {
    /// `None` with problems reported; `Some(None)` without an `[inbox]`.
    pub(super) fn inbox(
        &self,
        src: &SourceFile,
        raw: Option<&Spanned<raw::InboxTable>>,
        state_dir: &Path,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Option<InboxSettings>> {
        let Some(spanned) = raw else {
            return Some(None);
        };
        let table = spanned.get_ref();
        let problems = d.len();
        let mailbox = match (&table.maildir, &table.imap) {
            (None, None) => {
                d.push(src.at(
                    spanned.span(),
                    "[inbox] needs a mailbox: maildir = \"PATH\", or imap = { host = \"…\", username = \"…\" }",
                ));
                None
            }
            (Some(_), Some(imap)) => {
                d.push(src.at(
                    imap.span(),
                    "[inbox] reads one mailbox: set maildir or imap, not both",
                ));
                None
            }
            // A relative maildir is inside the state directory, as
            // [delivery]'s is.
            (Some(dir), None) => Some(Mailbox::Maildir(state_dir.join(dir.get_ref()))),
            (None, Some(imap)) => self.imap(src, imap, d).map(Mailbox::Imap),
        };
        let folder = |text: Option<&raw::Text>, default: &str, d: &mut Vec<Diagnostic>| match text {
            Some(text) => check(src, text, folder_name, d),
            None => Some(default.to_owned()),
        };
        let processed = folder(table.processed.as_ref(), DEFAULT_PROCESSED, d);
        let unreadable = folder(table.unreadable.as_ref(), DEFAULT_UNREADABLE, d);
        if let (Some(processed), Some(unreadable)) = (&processed, &unreadable)
            && processed == unreadable
        {
            let span = table
                .unreadable
                .as_ref()
                .or(table.processed.as_ref())
                .map_or(spanned.span(), Spanned::span);
            d.push(src.at(
                span,
                format!("processed and unreadable are both {processed:?}: give the messages herald cannot read a folder of their own"),
            ));
        }
        if let (Some(Mailbox::Imap(imap)), Some(processed), Some(unreadable)) =
            (&mailbox, &processed, &unreadable)
            && (imap.folder == *processed || imap.folder == *unreadable)
        {
            d.push(src.at(
                spanned.span(),
                format!(
                    "the folder {:?} is read for new mail: processed and unreadable must be other folders",
                    imap.folder
                ),
            ));
        }
        let poll = match &table.poll {
            Some(text) => check(src, text, |text| at_least(text, SHORTEST_POLL), d),
            None => Some(DEFAULT_POLL),
        };
        let bounce_threshold = match &table.bounce_threshold {
            Some(n) if *n.get_ref() == 0 => {
                d.push(src.at(n.span(), "bounce_threshold must be at least 1"));
                None
            }
            Some(n) => Some(*n.get_ref()),
            None => Some(DEFAULT_BOUNCE_THRESHOLD),
        };
        let bounce_period = match &table.bounce_period {
            Some(text) => check(src, text, period, d),
            None => Some(DEFAULT_BOUNCE_PERIOD),
        };
        if d.len() > problems {
            return None;
        }
        Some(Some(InboxSettings {
            mailbox: mailbox?,
            processed: processed?,
            unreadable: unreadable?,
            poll: poll?,
            bounce_threshold: bounce_threshold?,
            bounce_period: bounce_period?,
        }))
    }

    /// `imap = { … }`, with the password from `password_file`,
    /// $HERALD_IMAP_PASSWORD_FILE or the systemd credential `imap-password`.
    fn imap(
        &self,
        src: &SourceFile,
        spanned: &Spanned<raw::ImapTable>,
        d: &mut Vec<Diagnostic>,
    ) -> Option<ImapSettings> {
        let table = spanned.get_ref();
        let problems = d.len();
        if let Some(password) = &table.password {
            d.push(src.at(
                password.span(),
                "passwords are not kept in herald.toml: use password_file, or the systemd credential `imap-password` (LoadCredential=)",
            ));
        }
        let host = check(src, &table.host, host_of, d);
        let security = match &table.security {
            Some(text) => check(src, text, security_of, d),
            None => Some(Security::Tls),
        };
        let port = match table.port {
            Some(0) => {
                d.push(src.at(spanned.span(), "invalid port 0: a number from 1 to 65535"));
                None
            }
            Some(port) => Some(port),
            None => security.map(default_port),
        };
        if let (Some(host), Some(Security::None)) = (&host, security)
            && !is_loopback(host)
        {
            let span = table.security.as_ref().map_or(spanned.span(), Spanned::span);
            d.push(src.at(
                span,
                format!("refusing to send the IMAP password unencrypted to {host:?}: use security = \"tls\" or \"starttls\" (\"none\" is for loopback only)"),
            ));
        }
        let username = check(src, &table.username, |text| values::one_line(text, "username"), d);
        let layers = Layers::new(self.env, src);
        let password_file = layers.get(&["HERALD_IMAP_PASSWORD_FILE"], table.password_file.as_ref());
        let password = match password_file.path(Some(&self.dir)) {
            Some(path) => password_file.report(d, secrets::password_file(&path)).map(Some),
            None => match secrets::named_credential(self.env, secrets::IMAP_PASSWORD_CREDENTIAL) {
                Ok(password) => Some(password),
                Err(message) => {
                    d.push(Diagnostic::in_file(Path::new("$CREDENTIALS_DIRECTORY"), message));
                    None
                }
            },
        };
        // Without systemd's credentials (`herald check` from a shell) the
        // credential can only be known when the service runs.
        if password == Some(None) && secrets::has_credentials(self.env) {
            d.push(src.at(
                spanned.span(),
                "[inbox] imap has no password: set password_file, or give the systemd credential `imap-password`",
            ));
        }
        let ca_file = table.ca_file.as_ref().map(|file| self.dir.join(file.get_ref()));
        if let (Some(file), Some(text)) = (&ca_file, &table.ca_file)
            && !file.is_file()
        {
            d.push(src.at(
                text.span(),
                format!("ca_file {} is not a readable file", file.display()),
            ));
        }
        let folder = match &table.folder {
            Some(text) => check(src, text, folder_name, d),
            None => Some("INBOX".to_owned()),
        };
        let timeout = match &table.timeout {
            Some(text) => check(src, text, |text| at_least(text, Duration::from_secs(1)), d),
            None => Some(DEFAULT_IMAP_TIMEOUT),
        };
        if d.len() > problems {
            return None;
        }
        Some(ImapSettings {
            host: host?,
            port: port?,
            security: security?,
            username: username?,
            password: password?,
            ca_file,
            folder: folder?,
            timeout: timeout?,
        })
    }
}

/// A folder's name: one that is a Maildir++ subfolder and an IMAP mailbox
/// alike (no `/`, no leading dot, no control characters).
fn folder_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() || name.starts_with('.') || name.chars().any(|c| c == '/' || c.is_control()) {
        return Err(format!(
            "invalid folder name {text:?}: a name like \"Processed\" or \"herald.processed\" (no \"/\", not starting with \".\")"
        ));
    }
    Ok(name.to_owned())
}

/// A duration of at least `shortest`.
fn at_least(text: &str, shortest: Duration) -> Result<Duration, String> {
    let duration = values::duration(text)?.unsigned_abs();
    if duration < shortest {
        return Err(format!("{text:?} is too short: at least {}s", shortest.as_secs()));
    }
    Ok(duration)
}

/// A period: "14d" (days of 24 hours), or a duration like "72h".
fn period(text: &str) -> Result<jiff::SignedDuration, String> {
    let trimmed = text.trim();
    let duration = match trimmed.strip_suffix('d').map(|days| days.trim().parse::<i64>()) {
        Some(Ok(days)) if (0..=3650).contains(&days) => jiff::SignedDuration::from_hours(days * 24),
        Some(_) => {
            return Err(format!(
                "invalid period {text:?}: write it like \"14d\" or \"72h\""
            ));
        }
        None => values::duration(trimmed)
            .map_err(|_| format!("invalid period {text:?}: write it like \"14d\" or \"72h\""))?,
    };
    if duration.is_zero() {
        return Err(format!("invalid period {text:?}: it must be longer than nothing"));
    }
    Ok(duration)
}

fn security_of(text: &str) -> Result<Security, String> {
    values::security(text, 993, 143)
}

fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 993,
        Security::StartTls | Security::None => 143,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_in_days_or_hours() {
        assert_eq!(period("14d"), Ok(jiff::SignedDuration::from_hours(336)));
        assert_eq!(period("72h"), Ok(jiff::SignedDuration::from_hours(72)));
        for refused in ["", "0d", "-1d", "two weeks", "14 days"] {
            assert!(period(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn folder_names_fit_maildir_and_imap() {
        assert_eq!(folder_name("herald.processed"), Ok("herald.processed".to_owned()));
        for refused in ["", ".hidden", "a/b", "x\ny"] {
            assert!(folder_name(refused).is_err(), "{refused:?}");
        }
    }
}
