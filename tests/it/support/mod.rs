//! SMTP servers for the send tests: one written here to fail on demand, and
//! a real one nobody here wrote (aiosmtpd, launched from Python).

pub mod aiosmtpd;
pub mod dovecot;
pub mod smtp_faults;
