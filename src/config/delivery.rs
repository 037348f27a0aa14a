//! herald.toml's `[delivery]` table and `[delivery.smtp]` ->
//! [`Delivery`], with the environment's overrides (HERALD_TRANSPORT,
//! HERALD_STATE_DIR or systemd's STATE_DIRECTORY, HERALD_MAILDIR,
//! HERALD_REDIRECT_TO, HERALD_SMTP_*) and the SMTP password, read from a file
//! or a systemd credential.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::config::layered::Layers;
use crate::config::spanned::check;
use crate::config::{Loader, raw, secrets, values};
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::send::{Delivery, Security, SmtpSettings, Transport};

/// How long one message may take, connection to reply, unless `timeout` says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections to the relay at once, unless `max_connections` says.
const DEFAULT_MAX_CONNECTIONS: usize = 4;

/// The size over which `herald check` warns that a message is too large
/// for many relays, unless `max_message_size` says.
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 10_000_000;

/// How early a burst slowed by the relay's limits may start, unless
/// `max_early` says.
const DEFAULT_MAX_EARLY: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// The transports herald knows, by the name settings give them.
enum TransportName {
    Maildir,
    Smtp,
}

impl Loader<'_> {
    pub(super) fn delivery(
        &self,
        src: &SourceFile,
        raw: &raw::DeliveryTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Delivery> {
        let layers = Layers::new(self.env, src);
        let state_dir = layers
            .get(&["HERALD_STATE_DIR", "STATE_DIRECTORY"], raw.state_dir.as_ref())
            .path(Some(&self.dir))
            .unwrap_or_else(|| PathBuf::from("/var/lib/herald"));
        let late_window = match &raw.late_window {
            Some(text) => check(src, text, values::duration, d)?,
            None => jiff::SignedDuration::from_hours(6),
        };
        let max_message_size = match &raw.max_message_size {
            Some(text) => check(src, text, values::size, d)?,
            None => DEFAULT_MAX_MESSAGE_SIZE,
        };
        let redirect_to = layers
            .get(&["HERALD_REDIRECT_TO"], raw.redirect_to.as_ref())
            .check(d, || None, |text| values::address(text).map(Some))?;
        let transport = layers.get(&["HERALD_TRANSPORT"], raw.transport.as_ref()).check(
            d,
            || TransportName::Maildir,
            transport_of,
        )?;
        let transport = match transport {
            TransportName::Maildir => Transport::Maildir(
                // A relative maildir is inside the state directory, not the config's.
                layers
                    .get(&["HERALD_MAILDIR"], raw.maildir.as_ref())
                    .path(None)
                    .unwrap_or_else(|| PathBuf::from("maildir")),
            ),
            TransportName::Smtp => Transport::Smtp(self.smtp(&layers, src, raw, d)?),
        };
        Some(Delivery {
            transport,
            state_dir,
            database: None,
            late_window,
            redirect_to,
            max_message_size,
        })
    }

    /// The relay: from the `[delivery.smtp]` table, each setting the
    /// README lists overridden by its HERALD_SMTP_* variable; without the
    /// table, from the variables alone (HERALD_SMTP_HOST at least). A
    /// refused value is reported where it was written: `$NAME`, or its line
    /// in herald.toml.
    fn smtp(
        &self,
        layers: &Layers,
        src: &SourceFile,
        raw: &raw::DeliveryTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<SmtpSettings> {
        let table = raw.smtp.as_ref().map(Spanned::get_ref);
        // A problem of the relay as a whole: at its table, else at `transport`.
        let relay_span = raw
            .smtp
            .as_ref()
            .map(Spanned::span)
            .or_else(|| raw.transport.as_ref().map(Spanned::span))
            .unwrap_or(0..0);
        if let Some(password) = table.and_then(|t| t.password.as_ref()) {
            d.push(src.at(
                password.span(),
                "passwords are not kept in herald.toml: use password_file, or the systemd credential `smtp-password` (LoadCredential=)",
            ));
        }
        let host_setting = layers.get(&["HERALD_SMTP_HOST"], table.map(|t| &t.host));
        let Some(host) = host_setting.text() else {
            d.push(src.at(
                relay_span,
                "transport \"smtp\" needs a relay: a [delivery.smtp] table with at least `host`, or HERALD_SMTP_HOST",
            ));
            return None;
        };
        let host = host_setting.report(d, host_of(host))?;
        let security = layers
            .get(&["HERALD_SMTP_SECURITY"], table.and_then(|t| t.security.as_ref()))
            .check(d, || Security::StartTls, security_of);
        // herald.toml's port is a TOML integer that serde has checked; only
        // the environment's is text to parse.
        let port = layers.get(&["HERALD_SMTP_PORT"], None).check(
            d,
            || {
                table
                    .and_then(|t| t.port)
                    .unwrap_or(default_port(security.unwrap_or(Security::StartTls)))
            },
            |port| match port.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(format!("invalid port {port:?}: a number from 1 to 65535")),
            },
        );
        let username = layers
            .get(&["HERALD_SMTP_USERNAME"], table.and_then(|t| t.username.as_ref()))
            .text()
            .map(str::to_owned);
        let password_file = layers.get(
            &["HERALD_SMTP_PASSWORD_FILE"],
            table.and_then(|t| t.password_file.as_ref()),
        );
        // `None` with a problem reported: the password is unreadable.
        let password = match password_file.path(Some(&self.dir)) {
            Some(path) => password_file.report(d, secrets::password_file(&path)).map(Some),
            None => secrets::credential(self.env)
                .map_err(|message| {
                    d.push(Diagnostic::in_file(
                        std::path::Path::new("$CREDENTIALS_DIRECTORY"),
                        message,
                    ));
                })
                .ok(),
        };
        // Without systemd's credentials (`herald check` from a shell), the
        // credential can only be read when the service runs: not a problem
        // here (`check` says so, and the mailer refuses to start without it).
        if username.is_some()
            && password == Some(None)
            && (password_file.text().is_some() || secrets::has_credentials(self.env))
        {
            d.push(src.at(
                relay_span.clone(),
                "`username` is set but no password was found: set password_file, or give the systemd credential `smtp-password`",
            ));
        }
        let allow_plaintext_auth = table.is_some_and(|t| t.allow_plaintext_auth);
        if username.is_some()
            && security == Some(Security::None)
            && !allow_plaintext_auth
            && !is_loopback(&host)
        {
            d.push(host_setting.problem(
                format!("refusing to send a password unencrypted to {host:?}: use security = \"starttls\" or \"tls\", or set allow_plaintext_auth = true if you really mean it"),
            ));
        }
        let ca = layers.get(&["HERALD_SMTP_CA_FILE"], table.and_then(|t| t.ca_file.as_ref()));
        let ca_file = ca.path(Some(&self.dir));
        if let Some(file) = &ca_file
            && !file.is_file()
        {
            d.push(ca.problem(format!("ca_file {} is not a readable file", file.display())));
        }
        let timeout = match table.and_then(|t| t.timeout.as_ref()) {
            Some(text) => check(src, text, values::duration, d)?.unsigned_abs(),
            None => DEFAULT_TIMEOUT,
        };
        let max_connections = match table.and_then(|t| t.max_connections.as_ref()) {
            Some(n) if *n.get_ref() == 0 => {
                d.push(src.at(n.span(), "max_connections must be at least 1"));
                return None;
            }
            Some(n) => *n.get_ref(),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let mut count_limit = |name: &str, value: Option<&Spanned<u32>>| match value {
            Some(n) if *n.get_ref() == 0 => {
                d.push(src.at(
                    n.span(),
                    format!("{name} must be at least 1 (leave it out for no limit)"),
                ));
                None
            }
            other => other.map(|n| *n.get_ref()),
        };
        let per_hour = count_limit("per_hour", table.and_then(|t| t.per_hour.as_ref()));
        let per_day = count_limit("per_day", table.and_then(|t| t.per_day.as_ref()));
        let max_early = match table.and_then(|t| t.max_early.as_ref()) {
            Some(text) => check(src, text, values::duration, d)?,
            None => DEFAULT_MAX_EARLY,
        };
        Some(SmtpSettings {
            host,
            port: port?,
            security: security?,
            username,
            password: password?,
            allow_plaintext_auth,
            ca_file,
            timeout,
            max_connections,
            per_minute: table.and_then(|t| t.per_minute),
            per_hour,
            per_day,
            max_early,
        })
    }
}

fn transport_of(name: &str) -> Result<TransportName, String> {
    match name {
        "maildir" => Ok(TransportName::Maildir),
        "smtp" => Ok(TransportName::Smtp),
        other => Err(format!(
            "unknown transport {other:?}: use \"smtp\" or \"maildir\""
        )),
    }
}

/// A host name or address as written: no spaces, control characters or
/// URL parts, which a mistyped setting brings and no resolver would take.
pub(super) fn host_of(text: &str) -> Result<String, String> {
    let host = text.trim();
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
    {
        return Err(format!(
            "invalid host {text:?}: a host name or address, like \"smtp.example.org\" or \"192.0.2.25\""
        ));
    }
    Ok(host.to_owned())
}

fn security_of(text: &str) -> Result<Security, String> {
    values::security(text, 465, 587)
}

fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::None => 25,
    }
}

pub(super) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
