"""Reads an RFC 5322 message on stdin, finds its text/calendar part, parses
it with the Python `icalendar` package (a parser nobody here wrote) and
prints what a calendar client would see, as JSON.

Usage: ics_facts.py ZONE < message.eml
ZONE is an IANA zone to express DTSTART and DTEND in (e.g. Europe/Zurich).
"""
import email
import email.policy
import json
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar


def main():
    zone = ZoneInfo(sys.argv[1])
    message = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.default)
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    if not parts:
        print(json.dumps({"calendar_parts": 0}))
        return
    part = parts[0]
    calendar = icalendar.Calendar.from_ical(part.get_content())
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    event = events[0]

    def when(name):
        value = event.decoded(name)
        if isinstance(value, datetime):
            return {"instant": value.astimezone(zone).isoformat(), "utc": value.tzinfo is not None}
        if isinstance(value, date):
            return {"date": value.isoformat()}
        return {"other": str(value)}

    print(json.dumps({
        "calendar_parts": len(parts),
        "content_type_method": part.get_param("method"),
        "method": str(calendar.get("METHOD")),
        "events": len(events),
        "uid": str(event.get("UID")),
        "sequence": int(event.get("SEQUENCE")),
        "status": str(event.get("STATUS")),
        "summary": str(event.get("SUMMARY")),
        "location": str(event.get("LOCATION")) if event.get("LOCATION") else None,
        "organizer": str(event.get("ORGANIZER")),
        "attendee": str(event.get("ATTENDEE")),
        "dtstart": when("DTSTART"),
        "dtend": when("DTEND"),
    }))


if __name__ == "__main__":
    main()
