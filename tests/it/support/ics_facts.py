"""Reads an RFC 5322 message on stdin, finds its text/calendar part, parses
it with the Python `icalendar` package (a parser nobody here wrote) and
prints what a calendar client would see, as JSON.

Usage: ics_facts.py ZONE < message.eml
ZONE is an IANA zone to express DTSTART and DTEND in (e.g. Europe/Zurich).

Or: ics_facts.py --batch < calendars.json
reads a JSON array of iCalendar texts and prints, for each, what the
parser reads of its first event's SUMMARY, ATTENDEEs and ORGANIZER, and the
octets of its longest physical line; many calendars in one run keep the
property tests fast.
"""
import email
import email.policy
import json
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar


def batch():
    facts = []
    for text in json.load(sys.stdin):
        raw = text.encode("utf-8")
        # Each physical line must be UTF-8 on its own: a fold must not split a character.
        lines = raw.split(b"\r\n")
        for line in lines:
            line.decode("utf-8")
        calendar = icalendar.Calendar.from_ical(text)
        event = [c for c in calendar.walk() if c.name == "VEVENT"][0]
        attendees = event.get("ATTENDEE")
        if not isinstance(attendees, list):
            attendees = [attendees] if attendees is not None else []
        organizer = event.get("ORGANIZER")
        facts.append({
            "summary": str(event.get("SUMMARY")),
            "attendees": [{"value": str(a), "params": dict(a.params)} for a in attendees],
            "organizer_params": dict(organizer.params) if organizer is not None else None,
            "longest_line": max(len(line) for line in lines),
        })
    print(json.dumps(facts))


def main():
    if sys.argv[1] == "--batch":
        batch()
        return
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
        "description": str(event.get("DESCRIPTION")) if event.get("DESCRIPTION") else None,
        "url": str(event.get("URL")) if event.get("URL") else None,
        "organizer": str(event.get("ORGANIZER")),
        "attendee": str(event.get("ATTENDEE")),
        "attendee_params": dict(event.get("ATTENDEE").params),
        # The part comes decoded, with its CRLFs made newlines.
        "longest_line": max(
            len(line.rstrip("\r").encode("utf-8")) for line in part.get_content().split("\n")
        ),
        "dtstart": when("DTSTART"),
        "dtend": when("DTEND"),
    }))


if __name__ == "__main__":
    main()
