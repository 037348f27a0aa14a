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
            late_window,
            redirect_to,
        })
    }

    fn smtp(
        &self,
        layers: &Layers,
        src: &SourceFile,
        raw: &raw::DeliveryTable,
        d: &mut Vec<Diagnostic>,
    ) -> Option<SmtpSettings> {
        let Some(smtp) = &raw.smtp else {
            return self.smtp_from_env(layers).or_else(|| {
                let span = raw.transport.as_ref().map_or(0..0, Spanned::span);
                d.push(src.at(
                    span,
                    "transport \"smtp\" needs a [delivery.smtp] table with at least `host`",
                ));
                None
            });
        };
        let table = smtp.get_ref();
        if let Some(password) = &table.password {
            d.push(src.at(
                password.span(),
                "passwords are not kept in herald.toml: use password_file, or the systemd credential `smtp-password` (LoadCredential=)",
            ));
        }
        let security = layers
            .get(&["HERALD_SMTP_SECURITY"], table.security.as_ref())
            .reported_in_file(smtp.span())
            .check(d, || Security::StartTls, security_of)?;
        let host = layers
            .get(&["HERALD_SMTP_HOST"], Some(&table.host))
            .text()
            .unwrap_or_default() // never the default: herald.toml's table has a host
            .to_owned();
        // herald.toml's port is a TOML integer that serde has checked; only
        // the environment's is text to parse.
        let port = layers.get(&["HERALD_SMTP_PORT"], None).check(
            d,
            || table.port.unwrap_or(default_port(security)),
            |port| port.parse().map_err(|_| format!("invalid port {port:?}")),
        )?;
        let username = layers
            .get(&["HERALD_SMTP_USERNAME"], table.username.as_ref())
            .text()
            .map(str::to_owned);
        let password_file = layers
            .get(&["HERALD_SMTP_PASSWORD_FILE"], table.password_file.as_ref())
            .reported_in_file(smtp.span());
        let password = password_file
            .report(d, secrets::password(self.env, password_file.text(), &self.dir))
            .flatten();
        if username.is_some() && password.is_none() {
            d.push(src.at(
                smtp.span(),
                "`username` is set but no password was found: set password_file, or give the systemd credential `smtp-password`",
            ));
        }
        if username.is_some()
            && security == Security::None
            && !table.allow_plaintext_auth
            && !is_loopback(&host)
        {
            d.push(src.at(
                table.host.span(),
                format!("refusing to send a password unencrypted to {host:?}: use security = \"starttls\" or \"tls\", or set allow_plaintext_auth = true if you really mean it"),
            ));
        }
        let ca = layers
            .get(&["HERALD_SMTP_CA_FILE"], table.ca_file.as_ref())
            .reported_in_file(smtp.span());
        let ca_file = ca.path(Some(&self.dir));
        if let Some(file) = &ca_file
            && !file.is_file()
        {
            d.push(ca.problem(format!("ca_file {} is not a readable file", file.display())));
        }
        let timeout = match &table.timeout {
            Some(text) => check(src, text, values::duration, d)?.unsigned_abs(),
            None => DEFAULT_TIMEOUT,
        };
        let max_connections = match &table.max_connections {
            Some(n) if *n.get_ref() == 0 => {
                d.push(src.at(n.span(), "max_connections must be at least 1"));
                return None;
            }
            Some(n) => *n.get_ref(),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        Some(SmtpSettings {
            host,
            port,
            security,
            username,
            password,
            allow_plaintext_auth: table.allow_plaintext_auth,
            ca_file,
            timeout,
            max_connections,
            per_minute: table.per_minute,
        })
    }

    /// A relay named by HERALD_SMTP_HOST alone, without a [delivery.smtp]
    /// table: the host, username and CA file come from the environment, the
    /// password from the systemd credential, and the rest is the defaults.
    fn smtp_from_env(&self, layers: &Layers) -> Option<SmtpSettings> {
        let host = layers.get(&["HERALD_SMTP_HOST"], None).text()?.to_owned();
        Some(SmtpSettings {
            host,
            port: default_port(Security::StartTls),
            security: Security::StartTls,
            username: layers
                .get(&["HERALD_SMTP_USERNAME"], None)
                .text()
                .map(str::to_owned),
            password: secrets::password(self.env, None, &self.dir).ok().flatten(),
            allow_plaintext_auth: false,
            ca_file: layers.get(&["HERALD_SMTP_CA_FILE"], None).path(None),
            timeout: DEFAULT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            per_minute: None,
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

fn security_of(text: &str) -> Result<Security, String> {
    match text {
        "tls" => Ok(Security::Tls),
        "starttls" => Ok(Security::StartTls),
        "none" => Ok(Security::None),
        other => Err(format!(
            "unknown security {other:?}: use \"tls\" (port 465), \"starttls\" (port 587) or \"none\" (loopback only)"
        )),
    }
}

fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::None => 25,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
