//! herald: a mail daemon that keeps focal points informed of a roadmap of meetings, deadlines and circulations.
pub mod import;
