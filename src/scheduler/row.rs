//! A planned send <-> the outbox's row of it: the one conversion each way.
//!
//! The outbox keeps the due instant as a timestamp and the zone it was
//! planned in by name (for display); everything else the send is about is
//! in its key.

use tracing::warn;

use crate::outbox::SendSpec;
use crate::plan::PlannedSend;

/// The outbox's row of a planned send.
pub fn spec_of(send: &PlannedSend) -> SendSpec {
    SendSpec {
        key: send.key.clone(),
        recipient: send.to.clone(),
        list: send.list.clone(),
        language: send.language.clone(),
        template: send.template.clone(),
        due: send.due.timestamp(),
        zone: send.due.time_zone().iana_name().unwrap_or("UTC").to_owned(),
    }
}

/// The planned send an outbox row stands for. A zone the time zone
/// database no longer knows (it was renamed in an update) only changes how
/// the due instant is shown, so the send keeps its instant, in UTC, and the
/// log says so.
pub fn planned_of(spec: &SendSpec) -> PlannedSend {
    let zone = jiff::tz::db().get(&spec.zone).unwrap_or_else(|err| {
        warn!(send = %spec.key, zone = %spec.zone, error = %err, "unknown time zone in the outbox; showing the due instant in UTC");
        jiff::tz::TimeZone::UTC
    });
    PlannedSend {
        key: spec.key.clone(),
        due: spec.due.to_zoned_datetime(zone),
        to: spec.recipient.clone(),
        list: spec.list.clone(),
        language: spec.language.clone(),
        template: spec.template.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{AddressKey, SendKey};

    #[test]
    fn a_send_survives_the_round_trip_through_its_row() {
        let send = PlannedSend {
            key: SendKey::reminder("first-reading", "7d", &AddressKey::of("A@example.org")),
            due: "2017-09-25T15:00[America/New_York]".parse().unwrap(),
            to: "A@example.org".to_owned(),
            list: "member-states".to_owned(),
            language: "fr".to_owned(),
            template: "reminder".to_owned(),
        };
        assert_eq!(planned_of(&spec_of(&send)), send);
        let mut spec = spec_of(&send);
        spec.zone = "Nowhere/Atlantis".to_owned();
        assert_eq!(planned_of(&spec).due.time_zone().iana_name(), Some("UTC"));
    }
}
