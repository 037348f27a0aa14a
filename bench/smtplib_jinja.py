#!/usr/bin/env python3
"""What a user would write instead of herald: render N personalised
reminders (text + HTML, with Jinja2) and send each to its own recipient with
smtplib. THREADS threads, each with ONE connection of its own that it
reuses for all its messages (smtplib's SMTP object, sendmail() per message),
so the comparison is with herald's 4 reused connections.
"""

import argparse
import smtplib
import threading
from email.message import EmailMessage

import jinja2

TEXT = """{{ honorific }} {{ name }},

This is a reminder that {{ event }} takes place on {{ date }} at {{ venue }},
from {{ start }} to {{ end }} ({{ zone }}).

{% for line in agenda %}- {{ line }}
{% endfor %}
Yours sincerely,
The Secretariat
"""

HTML = """<!doctype html><html><body>
<p>{{ honorific }} {{ name }},</p>
<p>This is a reminder that <strong>{{ event }}</strong> takes place on {{ date }}
at {{ venue }}, from {{ start }} to {{ end }} ({{ zone }}).</p>
<ul>{% for line in agenda %}<li>{{ line }}</li>{% endfor %}</ul>
<p>Yours sincerely,<br>The Secretariat</p>
</body></html>
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    env = jinja2.Environment(autoescape=False)
    text = env.from_string(TEXT)
    html = jinja2.Environment(autoescape=True).from_string(HTML)

    def work(first):
        with smtplib.SMTP("127.0.0.1", a.port) as smtp:
            for i in range(first, a.count, a.threads):
                ctx = dict(honorific="Excellency", name="Focal Point %d" % i, event="Burst meeting",
                           date="2 January 2030", venue="Palais des Nations, Geneva", start="09:00",
                           end="12:00", zone="UTC", agenda=["Item %d" % k for k in range(20)])
                msg = EmailMessage()
                msg["From"] = "Secretariat <secretariat@bench.example.org>"
                msg["To"] = "fp%d@mission%d.example.org" % (i, i % 193)
                msg["Subject"] = "Reminder: Burst meeting on 2 January 2030"
                msg.set_content(text.render(ctx))
                msg.add_alternative(html.render(ctx), subtype="html")
                smtp.send_message(msg)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
