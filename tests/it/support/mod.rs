//! Servers and clients for the tests: SMTP servers (one written here to fail
//! on demand, and a real one nobody here wrote: aiosmtpd, launched from
//! Python), a real Dovecot, a real PostgreSQL for the shared outbox, an HTTP
//! client for herald's pages, and a headless Chromium to fill their forms in.

pub mod aiosmtpd;
pub mod browser;
pub mod dovecot;
pub mod postgres;
pub mod smtp_faults;
pub mod web;

/// A loopback port nobody listens on now (the system's choice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
