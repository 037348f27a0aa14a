//! herald.toml's `[http]` -> [`HttpSettings`] (where the two listeners
//! bind) and the public address of the pages, which goes into the model's
//! [`crate::model::Sender`] because every message's links are made from it.

use std::net::SocketAddr;

use toml::Spanned;

use crate::config::raw;
use crate::config::spanned::check;
use crate::diagnostics::{Diagnostic, SourceFile};
use crate::web::settings::{DEFAULT_ADMIN, HttpSettings};

/// What `[http]` gives: the listeners, and the base of every link.
pub(super) struct Http {
    pub settings: HttpSettings,
    pub public_url: Option<url::Url>,
}

/// Checks `[http]`, each value at its line and column. `Some(None)` without
/// the table; `None` once a value is refused. `has_secret` says whether the
/// link secrets were found: the public pages cannot work without them.
pub(super) fn http(
    src: &SourceFile,
    table: Option<&Spanned<raw::HttpTable>>,
    has_secret: bool,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<Option<Http>> {
    let Some(spanned) = table else {
        return Some(None);
    };
    let raw = spanned.get_ref();
    let before = d.len();
    let public = raw
        .public
        .as_ref()
        .and_then(|text| check(src, text, socket_address, d));
    let admin = match &raw.admin {
        Some(text) => check(src, text, socket_address, d),
        None => DEFAULT_ADMIN.parse().ok(),
    };
    if let (Some(text), Some(admin)) = (&raw.admin, admin)
        && !admin.ip().is_loopback()
    {
        warnings.push(src.at(
            text.span(),
            format!(
                "the admin listener {admin} is not on loopback: its status page and metrics name focal points and have no password; keep it on 127.0.0.1 and reach it through an SSH tunnel or a proxy that asks who you are"
            ),
        ));
    }
    let public_url = raw
        .public_url
        .as_ref()
        .and_then(|text| check(src, text, public_url, d));
    match (&raw.public, &raw.public_url) {
        (Some(text), None) => d.push(src.at(
            text.span(),
            "the public pages need public_url, the address readers reach them at (\"https://herald.example.org\"): every link in the mail is made from it",
        )),
        (None, Some(text)) => d.push(src.at(
            text.span(),
            "public_url without public: set public = \"127.0.0.1:PORT\", where herald listens for the reverse proxy that serves public_url",
        )),
        _ => {}
    }
    if let Some(text) = &raw.public
        && !has_secret
    {
        d.push(src.at(
            text.span(),
            format!(
                "the public pages need the link secret to sign and check their links: set secret_file here (or [sender] link_secret_file, $HERALD_LINK_SECRET_FILE, or the systemd credential `link-secret`) to a file made with: {}",
                crate::tokens::GENERATE_SECRET
            ),
        ));
    }
    if let (Some(public), Some(admin)) = (public, admin)
        && public == admin
    {
        d.push(src.at(
            spanned.span(),
            format!("public and admin are both {public}: the admin pages must not be reachable where the public ones are; give admin a port of its own"),
        ));
    }
    if d.len() > before {
        return None;
    }
    Some(Some(Http {
        settings: HttpSettings {
            public,
            public_url: public_url.clone(),
            admin: admin?,
        },
        public_url,
    }))
}

/// `ADDRESS:PORT`, an IP address (a host name would resolve to several).
fn socket_address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("invalid listening address {text:?}: an IP address and a port, like \"127.0.0.1:8080\" or \"[::1]:8080\"")
    })
}

/// The base of the links: https, or http on loopback (a test, or a proxy
/// on the same machine that readers never see the address of). Without a
/// trailing slash, so that `{public_url}/unsubscribe/…` has one.
fn public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|err| format!("invalid public_url {text:?}: {err}"))?;
    let loopback = url.host_str().is_some_and(super::delivery::is_loopback);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "public_url must be an https: address (readers follow it from their mail), like \"https://herald.example.org\"; got {text:?}"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "public_url is where the pages start, without a query, a fragment or a user: got {text:?}"
        ));
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_https_or_loopback_http_without_trailing_slash() {
        assert_eq!(
            public_url("https://herald.example.org/").unwrap().as_str(),
            "https://herald.example.org/"
        );
        assert_eq!(
            public_url("https://example.org/herald/").unwrap().as_str(),
            "https://example.org/herald"
        );
        assert!(public_url("http://127.0.0.1:8080").is_ok());
        assert!(public_url("http://herald.example.org").is_err());
        assert!(public_url("https://example.org/?a=b").is_err());
        assert!(socket_address("localhost:80").is_err());
        assert!(socket_address("[::1]:8080").is_ok());
    }
}
