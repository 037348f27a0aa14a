#!/usr/bin/env python3
"""Generates a large herald configuration directory for the benchmarks.

The directory looks like config/: herald.toml (the example's, with the
lists replaced and the templates pointed at this repository's templates/),
lists/*.csv and roadmaps/*.toml.

Distribution (the "scale" shape, the default):
  - LISTS distribution lists (default 20);
  - each focal point is on 1 to 3 lists (uniformly), so a list holds about
    N/10 focal points;
  - each event goes to 1 or 2 lists (uniformly) and has 3 lead times
    (7d, 1d, 2h);
  - events are meetings spread over two years from --start, in New York or
    Geneva, in the morning or the afternoon.
  With 10,000 focal points and 500 events that plans about 2.2 million sends
  (the exact figure is printed).

Other shapes:
  --burst T      throughput: ONE event, ONE list with every focal point and
                 ONE lead ("1d"), so N reminders are all due at T (UTC,
                 "2030-01-01T09:00:00Z"; T is a whole minute);
  --precision K  precision: M events on consecutive minutes, the first at
                 least two minutes from now, each with lead "1m" and a list
                 of K focal points, so K sends are due at each of M minutes.

The output is deterministic for given arguments (seeded RNG), except
--precision, whose dates are relative to now.
"""

import argparse
import datetime as dt
import os
import random
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

LANGUAGES = ["en", "fr", "es"]
HONORIFICS = ["Excellency", "Mr.", "Ms.", "Dr."]
FIRST = ["Amina", "Carlos", "Priya", "Jean-Marc", "Olga", "Kwame", "Li", "Sofia", "Omar", "Hanna"]
LAST = ["Diallo", "Mendoza", "Raman", "Dubois", "Petrova", "Mensah", "Wei", "Rossi", "Haddad", "Berg"]


def herald_toml(lists, smtp_port, max_connections, leads, smtp_extra=()):
    text = open(os.path.join(REPO, "config", "herald.toml"), encoding="utf-8").read()
    text = re.sub(r'^templates = .*$', 'templates = "%s"' % os.path.join(REPO, "templates"),
                  text, count=1, flags=re.M)
    # Drop the example's lists; ours follow.
    text = re.sub(r'^\[lists\.[^\]]+\]\n(?:(?!\[).*\n)*', "", text, flags=re.M)
    if leads:
        text = re.sub(r'^leads = .*$', "leads = %s" % leads, text, count=1, flags=re.M)
    out = [text.rstrip("\n"), ""]
    for lst in lists:
        out += ["[lists.%s]" % lst, 'name = "Generated list %s"' % lst, ""]
    if smtp_port:
        out[0] = out[0].replace('transport = "maildir"', 'transport = "smtp"')
        out += ["[delivery.smtp]", 'host = "127.0.0.1"', "port = %d" % smtp_port,
                'security = "none"', 'timeout = "30s"', "max_connections = %d" % max_connections]
        out += [line for line in smtp_extra if line] + [""]
    return "\n".join(out)


def focal_rows(n, lists_of):
    rows = ["name,email,mission,honorific,language,time_zone,lists"]
    for i in range(n):
        name = "%s %s %d" % (FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)], i)
        email = "fp%d@mission%d.example.org" % (i, i % 193)
        rows.append("%s,%s,Permanent Mission %d,%s,%s,%s,%s" % (
            name, email, i % 193, HONORIFICS[i % len(HONORIFICS)], LANGUAGES[i % len(LANGUAGES)],
            "America/New_York" if i % 2 else "Europe/Zurich", ";".join(lists_of(i))))
    return rows


def write_lists(out, rows, per_file=5000):
    header, body = rows[0], rows[1:]
    for k in range(0, max(len(body), 1), per_file):
        with open(os.path.join(out, "lists", "focal-points-%03d.csv" % (k // per_file)), "w",
                  encoding="utf-8") as f:
            f.write("\n".join([header] + body[k:k + per_file]) + "\n")


def event_toml(eid, title, date, start, venue, lists, leads):
    return "\n".join([
        "[[events]]", 'id = "%s"' % eid, 'title = "%s"' % title, 'kind = "meeting"',
        'date = "%s"' % date, 'start = "%s"' % start, 'end = "%s"' % end_of(start),
        'venue = "%s"' % venue, "lists = [%s]" % ", ".join('"%s"' % l for l in lists),
        "leads = [%s]" % ", ".join('"%s"' % l for l in leads), ""])


def end_of(start):
    h, m = map(int, start.split(":"))
    return "%02d:%02d" % (min(h + 3, 23), m)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--focal", type=int, default=10000)
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--lists", type=int, default=20)
    ap.add_argument("--start", default="2030-01-06", help="first day of the roadmap (scale shape)")
    ap.add_argument("--burst", help="throughput shape: every reminder due at this UTC instant")
    ap.add_argument("--precision", type=int, help="precision shape: focal points per due minute")
    ap.add_argument("--smtp-port", type=int, help="deliver over SMTP to 127.0.0.1:PORT (else maildir)")
    ap.add_argument("--max-connections", type=int, default=4)
    ap.add_argument("--per-minute", type=int, help="the relay's per_minute limit (SMTP only)")
    ap.add_argument("--max-early", help='how early a burst may start, e.g. "30m" (SMTP only)')
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    for d in ("lists", "roadmaps"):
        os.makedirs(os.path.join(a.out, d))

    events = []
    if a.burst:
        lists = ["everyone"]
        rows = focal_rows(a.focal, lambda i: ["everyone"])
        due = dt.datetime.strptime(a.burst, "%Y-%m-%dT%H:%M:%SZ")
        # The event is one day after the burst, in UTC's zone twin: a
        # venue in London would have DST; use the sum in New York's terms
        # by writing the event in UTC through an explicit venue below.
        at = due + dt.timedelta(days=1)
        events.append(("burst-meeting", "Burst meeting", at, "utc", ["everyone"], ["1d"]))
        expected = a.focal
    elif a.precision:
        lists = ["precision"]
        rows = focal_rows(a.precision, lambda i: ["precision"])
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        first = (now + dt.timedelta(minutes=3)).replace(second=0, microsecond=0)
        for k in range(a.events):
            at = first + dt.timedelta(minutes=k)
            events.append(("precision-%d" % k, "Precision meeting %d" % k, at, "utc", ["precision"], ["1m"]))
        expected = a.precision * a.events
    else:
        lists = ["list-%02d" % k for k in range(a.lists)]
        members = {l: 0 for l in lists}

        def lists_of(i):
            chosen = rng.sample(lists, rng.randint(1, 3))
            for l in chosen:
                members[l] += 1
            return chosen

        rows = focal_rows(a.focal, lists_of)
        start = dt.datetime.strptime(a.start, "%Y-%m-%d")
        expected = 0
        for k in range(a.events):
            day = start + dt.timedelta(days=(k * 730) // max(a.events, 1))
            at = day.replace(hour=rng.choice([10, 15]))
            to = rng.sample(lists, rng.randint(1, 2))
            events.append(("event-%04d" % k, "Meeting %d" % k, at, rng.choice(["new-york", "geneva"]),
                           to, ["7d", "1d", "2h"]))
            # Upper bound: a focal point on both lists gets one reminder.
            expected += 3 * sum(members[l] for l in to)

    extra = []
    if a.per_minute:
        extra.append("per_minute = %d" % a.per_minute)
    if a.max_early:
        extra.append('max_early = "%s"' % a.max_early)
    toml = herald_toml(lists, a.smtp_port, a.max_connections, None, extra)
    if any(e[3] == "utc" for e in events):
        toml = toml.replace("[venues.new-york]", '[venues.utc]\nname = "Benchmark venue"\ncity = "Nowhere"\n'
                            'time_zone = "UTC"\n\n[venues.new-york]', 1)
    with open(os.path.join(a.out, "herald.toml"), "w", encoding="utf-8") as f:
        f.write(toml)
    write_lists(a.out, rows)
    per_file = 100
    for k in range(0, len(events), per_file):
        chunk = events[k:k + per_file]
        text = ['id = "generated-%03d"' % (k // per_file), 'title = "Generated roadmap %d"' % (k // per_file),
                "notices = false", ""]
        for eid, title, at, venue, to, leads in chunk:
            text.append(event_toml(eid, title, at.strftime("%Y-%m-%d"), at.strftime("%H:%M"), venue, to, leads))
        with open(os.path.join(a.out, "roadmaps", "generated-%03d.toml" % (k // per_file)), "w",
                  encoding="utf-8") as f:
            f.write("\n".join(text))
    print("%s: %d focal points, %d events, %d lists, about %d sends" % (
        a.out, a.focal if not a.precision else a.precision, len(events), len(lists), expected), file=sys.stderr)
    if a.precision:
        print(events[0][2].strftime("%Y-%m-%dT%H:%M:%SZ"))


if __name__ == "__main__":
    main()
