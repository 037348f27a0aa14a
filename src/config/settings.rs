//! herald.toml: the sender (with its bounce address and link secrets), the
//! reminder policy, the parts of the day, the venues and the lists (its
//! `[delivery]` table is `delivery.rs`'s), and the references other files
//! make to its venues and lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use jiff::civil::Time;
use toml::Spanned;

use crate::config::layered::Layers;
use crate::config::secrets::{self, LINK_SECRET_CREDENTIAL};
use crate::config::spanned::{check, leads_of};
use crate::config::{Loaded, Loader, raw, values};
use crate::diagnostics::{Diagnostic, Place, SourceFile};
use crate::key::TOKEN_LEN;
use crate::model::{Lead, List, ReminderPolicy, Sender, Settings, Venue};
use crate::send::Delivery;
use crate::tokens::{self, LinkKeys};

/// What herald.toml gives besides the model's settings.
pub(super) type SettingsOf = (
    Settings,
    Delivery,
    Option<crate::inbox::InboxSettings>,
    Option<crate::web::HttpSettings>,
);

/// What the rest of the config needs from `herald.toml`, even when part of
/// it is invalid, so other files can still be checked against it.
#[derive(Default)]
pub(super) struct SettingsParts {
    /// False when herald.toml could not be parsed: then lists and venues are
    /// unknown, and references to them are not reported.
    pub(super) parsed: bool,
    pub(super) settings: Option<SettingsOf>,
    pub(super) venues: BTreeMap<String, Venue>,
    /// Every venue id in herald.toml, valid or not, so that a venue with a
    /// problem of its own is not also reported as unknown where it is used.
    declared_venues: BTreeSet<String>,
    pub(super) lists: BTreeMap<String, List>,
    pub(super) parts_of_day: BTreeMap<String, (Time, Time)>,
    pub(super) default_language: String,
}

impl Loader<'_> {
    /// Checks `herald.toml` value by value.
    pub(super) fn settings_parts(&mut self, file: &Loaded, raw: &raw::HeraldFile) -> SettingsParts {
        let src = file.source();
        let mut d = Vec::new();

        let default_language = match &raw.default_language {
            Some(text) => check(&src, text, values::language, &mut d).unwrap_or_else(|| "en".to_owned()),
            None => "en".to_owned(),
        };

        let mut venues = BTreeMap::new();
        let declared_venues = raw.venues.keys().cloned().collect();
        for (id, venue) in &raw.venues {
            let table = venue.get_ref();
            let name = id_and_name(&src, "venue", id, venue.span(), &table.name, &mut d);
            let zone = check(&src, &table.time_zone, values::zone, &mut d);
            let city = match &table.city {
                Some(city) => check(&src, city, |t| values::one_line(t, "the city"), &mut d),
                None => zone.as_ref().map(|z| crate::model::city_of_zone(&z.name)),
            };
            if let (Some(name), Some(zone), Some(city)) = (name, zone, city) {
                venues.insert(
                    id.clone(),
                    Venue {
                        id: id.clone(),
                        name,
                        city,
                        zone,
                    },
                );
            }
        }

        let mut lists = BTreeMap::new();
        for (id, list) in &raw.lists {
            let table = list.get_ref();
            let name = id_and_name(&src, "list", id, list.span(), &table.name, &mut d);
            let leads = table.leads.as_ref().map(|leads| leads_of(&src, leads, &mut d));
            if let Some(name) = name {
                lists.insert(
                    id.clone(),
                    List {
                        id: id.clone(),
                        name,
                        leads,
                    },
                );
            }
        }

        let mut parts_of_day = BTreeMap::new();
        for (name, hours) in &raw.parts_of_day {
            if let Some(range) = check(&src, hours, values::time_range, &mut d) {
                parts_of_day.insert(name.clone(), range);
            }
        }
        if raw.parts_of_day.is_empty() {
            // The hours of United Nations meetings.
            parts_of_day.insert(
                "morning".to_owned(),
                (jiff::civil::time(10, 0, 0, 0), jiff::civil::time(13, 0, 0, 0)),
            );
            parts_of_day.insert(
                "afternoon".to_owned(),
                (jiff::civil::time(15, 0, 0, 0), jiff::civil::time(18, 0, 0, 0)),
            );
        }

        let reminders = reminder_policy(&src, &raw.reminders, &mut d);
        let links = self.link_keys(&src, raw, &mut d);
        let has_secret = matches!(links, Some(Some(_)));
        let mut http_warnings = Vec::new();
        let http = super::http::http(&src, raw.http.as_ref(), has_secret, &mut d, &mut http_warnings);
        for warning in http_warnings {
            self.warnings.push(warning);
        }
        let public_url = http.as_ref().and_then(|http| http.as_ref()?.public_url.clone());
        let sender = sender(&src, raw.sender.get_ref(), links, public_url, &mut d);
        self.warn_unverifiable_unsubscribe(&src, raw.sender.get_ref(), sender.as_ref());
        self.warn_shared_https_unsubscribe(&src, raw.sender.get_ref(), sender.as_ref());
        let database = self.database(&src, raw.state.as_ref(), &mut d);
        let delivery = self
            .delivery(&src, &raw.delivery, &mut d)
            .map(|delivery| crate::send::Delivery {
                database: database.clone().flatten(),
                ..delivery
            });
        let state_dir = delivery
            .as_ref()
            .map(|delivery| delivery.state_dir.clone())
            .unwrap_or_default();
        let inbox = self.inbox(&src, raw.inbox.as_ref(), &state_dir, &mut d);
        let digest = raw
            .digest
            .as_ref()
            .map(|table| super::digest::digest(&src, table, &default_language, &mut d));

        let settings = match (sender, reminders, delivery, inbox, http, database) {
            (Some(sender), Some(reminders), Some(delivery), Some(inbox), Some(http), Some(_))
                if d.is_empty() =>
            {
                Some((
                    Settings {
                        default_language: default_language.clone(),
                        sender,
                        reminders,
                        parts_of_day: parts_of_day.clone(),
                        digest: digest.flatten(),
                    },
                    delivery,
                    inbox,
                    http.map(|http| http.settings),
                ))
            }
            _ => None,
        };
        self.report(d);
        SettingsParts {
            parsed: true,
            settings,
            venues,
            declared_venues,
            lists,
            parts_of_day,
            default_language,
        }
    }
}

impl SettingsParts {
    /// What other files are checked against when herald.toml could not be
    /// read: no lists or venues (so references to them are not reported),
    /// and English.
    pub(super) fn unread() -> SettingsParts {
        SettingsParts {
            default_language: "en".to_owned(),
            ..SettingsParts::default()
        }
    }

    /// The lists named, each checked against herald.toml's.
    pub(super) fn lists_of(
        &self,
        src: &SourceFile,
        lists: &[Spanned<String>],
        d: &mut Vec<Diagnostic>,
    ) -> Vec<String> {
        let mut result = Vec::new();
        for text in lists {
            let id = text.get_ref();
            if self.lists.contains_key(id) {
                result.push(id.clone());
            } else if self.parsed {
                d.push(src.at(text.span(), unknown_list_message(id, &self.lists)));
            }
        }
        result
    }

    /// The venue named, checked against herald.toml's. A venue with a
    /// problem of its own gives `None` without a second report.
    pub(super) fn venue_of(
        &self,
        src: &SourceFile,
        text: &Spanned<String>,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Venue> {
        match self.venues.get(text.get_ref()) {
            Some(venue) => Some(venue.clone()),
            None if !self.parsed || self.declared_venues.contains(text.get_ref()) => None,
            None => {
                d.push(src.at(
                    text.span(),
                    format!(
                        "unknown venue {:?}: venues are declared in herald.toml as [venues.ID]; the known venues are: {}",
                        text.get_ref(),
                        known(&self.venues)
                    ),
                ));
                None
            }
        }
    }
}

pub(super) fn unknown_list_message(id: &str, lists: &BTreeMap<String, List>) -> String {
    format!(
        "unknown list {id:?}: lists are declared in herald.toml as [lists.ID]; the known lists are: {}",
        known(lists)
    )
}

/// The ids of `declared`, for a message about an unknown one.
fn known<T>(declared: &BTreeMap<String, T>) -> String {
    if declared.is_empty() {
        "(none)".to_owned()
    } else {
        declared.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }
}

fn reminder_policy(
    src: &SourceFile,
    raw: &raw::RemindersTable,
    d: &mut Vec<Diagnostic>,
) -> Option<ReminderPolicy> {
    let leads = match &raw.leads {
        Some(leads) => leads_of(src, leads, d),
        None => vec![Lead::parse("7d").ok()?, Lead::parse("1d").ok()?],
    };
    let kinds = raw
        .kinds
        .iter()
        .map(|(kind, leads)| (kind.clone(), leads_of(src, leads, d)))
        .collect();
    let all_day_at = match &raw.all_day_at {
        Some(text) => check(src, text, values::time, d)?,
        None => jiff::civil::time(9, 0, 0, 0),
    };
    let notice_delay = match &raw.notice_delay {
        Some(text) => check(src, text, values::duration, d)?,
        None => jiff::SignedDuration::from_mins(10),
    };
    Some(ReminderPolicy {
        leads,
        kinds,
        all_day_at,
        notice_delay,
    })
}

/// The sender, with the link secrets `Loader::link_keys` read (`None`: they
/// could not be, and that was reported).
fn sender(
    src: &SourceFile,
    raw: &raw::SenderTable,
    links: Option<Option<Arc<LinkKeys>>>,
    public_url: Option<url::Url>,
    d: &mut Vec<Diagnostic>,
) -> Option<Sender> {
    let from = check(src, &raw.from, values::mailbox, d)?;
    let reply_to = match &raw.reply_to {
        Some(text) => Some(check(src, text, values::mailbox, d)?),
        None => None,
    };
    let organization = match &raw.organization {
        Some(text) => check(src, text, |t| values::one_line(t, "the organization"), d)?,
        None => String::new(),
    };
    let domain = match &raw.domain {
        Some(text) => check(src, text, |t| values::one_line(t, "the domain"), d)?,
        None => from.email.domain().to_owned(),
    };
    let bounce_address = match &raw.bounce_address {
        Some(text) => Some(check(src, text, bounce_address_of, d)?),
        None => None,
    };
    let unsubscribe = match &raw.unsubscribe {
        Some(text) => {
            let value = check(src, text, |t| values::one_line(t, "unsubscribe"), d)?;
            if !(value.starts_with("mailto:") || value.starts_with("https:")) {
                d.push(src.at(text.span(), "unsubscribe must be a mailto: or https: address"));
                return None;
            }
            Some(value)
        }
        None => None,
    };
    Some(Sender {
        from,
        reply_to,
        organization,
        domain,
        unsubscribe,
        bounce_address,
        links: links?,
        public_url,
    })
}

/// A bounce address: an address whose local part has no `+` (herald adds
/// `+TOKEN` itself) and leaves room for it within SMTP's 64 characters.
fn bounce_address_of(text: &str) -> Result<lettre::Address, String> {
    let address = values::address(text)?;
    if address.user().contains('+') {
        return Err(format!(
            "bounce_address {text:?} has a `+` in its local part: herald adds `+TOKEN` to it for each message (VERP), so write the address without it, like \"bounces@{}\"",
            address.domain()
        ));
    }
    let room = MAX_LOCAL_PART - 1 - TOKEN_LEN;
    if address.user().chars().count() > room {
        return Err(format!(
            "bounce_address {text:?} has a local part longer than {room} characters: herald adds `+` and a {TOKEN_LEN}-character token to it, and SMTP allows {MAX_LOCAL_PART}"
        ));
    }
    Ok(address)
}

/// The longest local part of an address SMTP allows (RFC 5321, 4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;

impl Loader<'_> {
    /// The link secrets: from the file `[sender] link_secret_file` or
    /// `[http] secret_file` (one of them, or `$HERALD_LINK_SECRET_FILE`)
    /// names, else the systemd credential
    /// `link-secret`; `Some(None)` when none is given, `None` when they
    /// cannot be used (reported: the file at the setting's line, a short
    /// secret at its line of the file, never its text).
    fn link_keys(
        &self,
        src: &SourceFile,
        raw: &raw::HeraldFile,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Option<Arc<LinkKeys>>> {
        let in_sender = raw.sender.get_ref().link_secret_file.as_ref();
        let in_http = raw
            .http
            .as_ref()
            .and_then(|http| http.get_ref().secret_file.as_ref());
        if let (Some(_), Some(second)) = (in_sender, in_http) {
            d.push(src.at(
                second.span(),
                "the link secret file is set twice, here and in [sender] link_secret_file: one secret signs the mail's links and the pages' alike, so keep one of them",
            ));
            return None;
        }
        let layers = Layers::new(self.env, src);
        let setting = layers.get(&["HERALD_LINK_SECRET_FILE"], in_sender.or(in_http));
        let path = match setting.path(Some(&self.dir)) {
            Some(path) => path,
            None => match secrets::credential_path(self.env, LINK_SECRET_CREDENTIAL) {
                Some(path) => path,
                None => return Some(None),
            },
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) => {
                // The file made is readable by its owner alone, whatever the umask.
                let message = format!(
                    "cannot read the link secret file {}: {err}; make one with: {} | install -m 0600 /dev/stdin {}",
                    path.display(),
                    tokens::GENERATE_SECRET,
                    path.display()
                );
                d.push(match setting.text() {
                    Some(_) => setting.problem(message),
                    None => Diagnostic::in_file(Path::new("$CREDENTIALS_DIRECTORY"), message),
                });
                return None;
            }
        };
        match LinkKeys::parse(&bytes) {
            Ok(keys) => Some(Some(Arc::new(keys))),
            Err(problems) => {
                for problem in problems {
                    // Never with a snippet: the line is a secret.
                    d.push(Diagnostic {
                        file: path.clone(),
                        place: problem.line().map_or(Place::File, Place::Line),
                        message: problem.to_string(),
                        snippet: None,
                    });
                }
                None
            }
        }
    }

    /// A `mailto:` unsubscribe without a link secret works as written but
    /// proves nothing: a reply cannot say who asked, so it unsubscribes
    /// nobody. A warning at the unsubscribe setting, once per load.
    fn warn_unverifiable_unsubscribe(
        &mut self,
        src: &SourceFile,
        raw: &raw::SenderTable,
        sender: Option<&Sender>,
    ) {
        let (Some(text), Some(sender)) = (&raw.unsubscribe, sender) else {
            return;
        };
        if sender.links.is_some() || !text.get_ref().starts_with("mailto:") {
            return;
        }
        let mut message = format!(
            "unsubscribe replies cannot be verified without a link secret, so a reply to this mailto: cannot say who asked and unsubscribes nobody by itself: set link_secret_file (or $HERALD_LINK_SECRET_FILE, or the systemd credential `{LINK_SECRET_CREDENTIAL}`) to a file made with: {}",
            tokens::GENERATE_SECRET
        );
        if !secrets::has_credentials(self.env) {
            message.push_str(" (a systemd credential is read only when herald runs under systemd)");
        }
        self.warnings.push(src.at(text.span(), message));
    }
}

impl Loader<'_> {
    /// An https: unsubscribe is one address for every reader: a click on
    /// it cannot say who leaves, so it cannot be one-click (RFC 8058) and
    /// mail carries no `List-Unsubscribe-Post`. With personal links
    /// (`[http] public_url` and a link secret) every message carries its
    /// reader's own link instead, and this address is not used. Either way
    /// a warning at the setting, saying which.
    fn warn_shared_https_unsubscribe(
        &mut self,
        src: &SourceFile,
        raw: &raw::SenderTable,
        sender: Option<&Sender>,
    ) {
        let (Some(text), Some(sender)) = (&raw.unsubscribe, sender) else {
            return;
        };
        if !text.get_ref().starts_with("https:") {
            return;
        }
        let message = if sender.public_url.is_some() && sender.links.is_some() {
            "this https: address is not used: every message carries its reader's own unsubscribe link to herald's pages ([http] public_url); remove it, or give a mailto: address for replies".to_owned()
        } else {
            format!(
                "this https: address is the same for every reader, so a click on it cannot say who leaves: it cannot be one-click (RFC 8058) and mail carries no List-Unsubscribe-Post; serve herald's pages ([http] public, public_url and a link secret file made with: {}) and every message carries its reader's own link",
                tokens::GENERATE_SECRET
            )
        };
        self.warnings.push(src.at(text.span(), message));
    }
}

/// What every venue and list of herald.toml has: an id, checked (a problem
/// is reported at the table, `span`), and a name on one line.
fn id_and_name(
    src: &SourceFile,
    what: &str,
    id: &str,
    span: std::ops::Range<usize>,
    name: &raw::Text,
    d: &mut Vec<Diagnostic>,
) -> Option<String> {
    if let Err(message) = values::id(id) {
        d.push(src.at(span, format!("{what} {message}")));
    }
    check(
        src,
        name,
        |t| values::one_line(t, &format!("the {what}'s name")),
        d,
    )
}
