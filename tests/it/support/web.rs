//! herald's web side in the tests: a configuration that serves pages on
//! free loopback ports, and a real HTTP client (ureq) to talk to them.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::free_port;
use crate::harness::{ConfigDir, Daemon};

/// The link secret the tests sign with: 32 bytes and more.
pub const SECRET: &str = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz";

/// Where a daemon configured by [`serve_pages`] listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub public: u16,
    pub admin: u16,
}

impl Ports {
    /// `http://127.0.0.1:PORT` of the public pages (also `public_url`).
    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.public)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin)
    }

    /// Runs the daemon `command` starts and waits until it is ready and
    /// both listeners take connections.
    pub fn start(&self, command: &mut Command) -> Daemon {
        let mut daemon = Daemon::spawn(command);
        daemon.wait_for("herald::daemon: ready");
        self.wait_until_listening();
        daemon
    }

    /// Waits (up to 20 s) until both listeners take connections.
    fn wait_until_listening(&self) {
        for port in [self.public, self.admin] {
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "nothing listens on 127.0.0.1:{port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Adds `[http]` to the configuration's herald.toml, with both listeners
/// on free loopback ports and a link secret file (`link-secret`, 0600) in
/// the configuration directory holding `secrets`, one a line (the first
/// signs).
pub fn serve_pages(config: &ConfigDir, secrets: &[&str]) -> Ports {
    let ports = Ports {
        public: free_port(),
        admin: free_port(),
    };
    write_secrets(config, secrets);
    let herald = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{herald}\n[http]\npublic = \"127.0.0.1:{}\"\npublic_url = \"{}\"\nadmin = \"127.0.0.1:{}\"\nsecret_file = \"link-secret\"\n",
            ports.public,
            ports.public_url(),
            ports.admin
        ),
    );
    ports
}

/// Writes the link secret file (`link-secret`, 0600), one secret a line.
pub fn write_secrets(config: &ConfigDir, secrets: &[&str]) {
    let mut text = secrets.join("\n");
    text.push('\n');
    config.write("link-secret", &text);
    let path = config.path().join("link-secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A real HTTP client that reports every status as an answer (a 4xx is
/// what some tests expect), with no cookies or redirects of its own.
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Client { agent }
    }

    pub fn get(&self, url: &str) -> Answer {
        answer(
            self.agent
                .get(url)
                .call()
                .unwrap_or_else(|err| panic!("GET {url}: {err}")),
        )
    }

    /// A POST of `fields` as a form, with extra `headers` (`Origin`,
    /// `Sec-Fetch-Site`, …).
    pub fn post_form(&self, url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(
            request
                .send_form(fields.iter().copied())
                .unwrap_or_else(|err| panic!("POST {url}: {err}")),
        )
    }
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}
