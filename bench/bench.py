#!/usr/bin/env python3
"""herald's benchmarks; see bench/README.md. Run through bench/run.sh.

Each part prints one line per figure, "name<TAB>value<TAB>unit<TAB>note",
and nothing here fails on a number: these are figures, not tests.
"""

import argparse
import datetime as dt
import glob
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Where `cargo build --release` (bench/run.sh) put it.
HERALD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "herald")
GEN = os.path.join(HERE, "gen_config.py")
CLK = os.sysconf("SC_CLK_TCK")


def figure(name, value, unit, note=""):
    print("%s\t%s\t%s\t%s" % (name, value, unit, note), flush=True)


def gen(out, *args):
    subprocess.run([sys.executable, GEN, "--out", out] + [str(a) for a in args], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, **kw):
    """Wall seconds and peak RSS (MiB) of a command."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - start, usage.ru_maxrss / 1024, proc.returncode


class Sink:
    """Postfix's smtp-sink on a free loopback port."""

    def __init__(self):
        if not shutil.which("smtp-sink") and not os.path.exists("/usr/sbin/smtp-sink"):
            sys.exit("smtp-sink is missing: apt-get install postfix (choose 'No configuration')")
        self.port = free_port()
        cmd = ["/usr/sbin/smtp-sink", "-c", "127.0.0.1:%d" % self.port, "1000"]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def proc_cpu(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_cpu_ns(pid):
    """CPU time of every thread of `pid`, in seconds, from the scheduler's
    nanosecond counters (/proc/PID/task/*/schedstat): finer than the 10 ms
    ticks of /proc/PID/stat, which an idle minute may not reach."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            total += int(open("/proc/%d/task/%s/schedstat" % (pid, task)).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def proc_mem(pid):
    text = open("/proc/%d/status" % pid).read()
    get = lambda key: int(re.search(r"^%s:\s+(\d+) kB" % key, text, re.M).group(1)) / 1024
    return get("VmRSS"), get("VmHWM")


def log_time(line):
    stamp = line.split()[0]
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait_for_line(path, pattern, timeout, after=0):
    """The first log line matching `pattern` past byte `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(after)
            for line in f:
                if re.search(pattern, line):
                    return line
        time.sleep(0.01)
    return None


# --------------------------------------------------------------------------

def throughput(work, n, connections):
    sink = Sink()
    try:
        due = "2030-01-01T09:00:00Z"
        config = os.path.join(work, "burst")
        gen(config, "--focal", n, "--burst", due, "--smtp-port", sink.port, "--max-connections", connections)
        sample = subprocess.run([HERALD, "--config", config, "preview", "--event", "burst-meeting",
                                 "--to", "fp1@mission1.example.org"], capture_output=True, check=True).stdout
        size = len(sample)
        figure("message size", size, "bytes", "one herald reminder (text+HTML+ics), used for smtp-source -l")

        secs, _, _ = timed(["/usr/sbin/smtp-source", "-c", "-l", str(size), "-m", str(n), "-s", str(connections),
                            "-f", "from@bench.example.org", "-t", "to@bench.example.org",
                            "127.0.0.1:%d" % sink.port], stdout=subprocess.DEVNULL)
        source = n / secs
        figure("smtp-source", "%.0f" % source, "msg/s", "%d msgs, %d connections" % (n, connections))

        state = os.path.join(work, "burst-state")
        shutil.rmtree(state, ignore_errors=True)
        secs, rss, code = timed([HERALD, "--config", config, "run", "--state-dir", state, "--fast-forward",
                                 "--rehearse-from", "2030-01-01T08:59:00Z", "--until", "2030-01-01T09:01:00Z",
                                 # The sink stands for the relay: a rehearsal must say so to use SMTP.
                                 "--real-recipients"],
                                stderr=open(os.path.join(work, "burst.log"), "w"))
        log = open(os.path.join(work, "burst.log")).read()
        # Each batch logs "dispatched sent=N …".
        sent = sum(int(count) for count in re.findall(r"dispatched sent=(\d+)", log))
        rate = sent / secs
        figure("herald run", "%.0f" % rate, "msg/s",
               "%d sent in %.2f s (start, plan, outbox and exit included), peak RSS %.0f MiB" % (sent, secs, rss))
        figure("herald / smtp-source", "%.2f" % (rate / source), "ratio", "target >= 0.6")

        py = os.path.join(HERE, "smtplib_jinja.py")
        secs, _, code = timed([sys.executable, py, "--port", str(sink.port), "--count", str(n),
                               "--threads", str(connections)], stdout=subprocess.DEVNULL)
        python = n / secs
        figure("python smtplib+jinja2", "%.0f" % python, "msg/s", "%d threads, one connection each" % connections)
        figure("herald / python", "%.1f" % (rate / python), "ratio", "target >= 20")
    finally:
        sink.stop()


def attachment(work, n, connections, size):
    """The burst of `throughput` without and with a file of `size` bytes on
    every message (herald alone: smtp-source and Python have no part here)."""
    sink = Sink()
    try:
        due = "2030-01-01T09:00:00Z"
        for label, extra in (("without", []), ("with", ["--attachment-size", size])):
            config = os.path.join(work, "burst-" + label)
            gen(config, "--focal", n, "--burst", due, "--smtp-port", sink.port,
                "--max-connections", connections, *extra)
            sample = subprocess.run([HERALD, "--config", config, "preview", "--event", "burst-meeting",
                                     "--to", "fp1@mission1.example.org"], capture_output=True, check=True).stdout
            state = os.path.join(work, "burst-%s-state" % label)
            shutil.rmtree(state, ignore_errors=True)
            logpath = os.path.join(work, "burst-%s.log" % label)
            secs, rss, code = timed([HERALD, "--config", config, "run", "--state-dir", state, "--fast-forward",
                                     "--rehearse-from", "2030-01-01T08:59:00Z", "--until", "2030-01-01T09:01:00Z",
                                     "--real-recipients"], stderr=open(logpath, "w"))
            sent = sum(int(count) for count in re.findall(r"dispatched sent=(\d+)", open(logpath).read()))
            figure("herald run, %s attachment" % label, "%.0f" % (sent / secs), "msg/s",
                   "%d sent in %.2f s, messages of %d bytes, peak RSS %.0f MiB" % (sent, secs, len(sample), rss))
    finally:
        sink.stop()


# The daemon's clock starts here for the idle and start parts: the middle
# of the generated schedule (two years from 2030-01-06), so that the outbox's
# 48-hour horizon is as full as on a working day, and at 00:00Z, hours before
# the first send due (reminders go out at 08:00 and 13:00 in New York and
# Geneva), so that the daemon stays idle.
REHEARSE_FROM = "2031-01-05T00:00:00Z"


def planned_at_start(logpath):
    """How many sends the start-up reconcile put in the outbox."""
    for line in open(logpath):
        found = re.search(r"outbox reconciled with the plan changes=\+(\d+) planned", line)
        if found:
            return int(found.group(1))
    return 0


def idle(work, seconds):
    config = os.path.join(work, "idle")
    gen(config, "--focal", 1000, "--events", 200)
    state = os.path.join(work, "idle-state")
    shutil.rmtree(state, ignore_errors=True)
    logpath = os.path.join(work, "idle.log")
    proc = subprocess.Popen([HERALD, "--config", config, "run", "--state-dir", state,
                             "--rehearse-from", REHEARSE_FROM], stderr=open(logpath, "w"))
    try:
        if not wait_for_line(logpath, r"herald::daemon: ready", 300):
            figure("idle", "n/a", "", "the daemon did not get ready")
            return
        figure("idle: sends in the outbox", "%d" % planned_at_start(logpath), "",
               "the 48 hours from %s" % REHEARSE_FROM)
        time.sleep(2)
        cpu0, ns0 = proc_cpu(proc.pid), proc_cpu_ns(proc.pid)
        time.sleep(seconds)
        cpu1, ns1 = proc_cpu(proc.pid), proc_cpu_ns(proc.pid)
        rss, hwm = proc_mem(proc.pid)
        figure("idle CPU", "%.2f" % ((ns1 - ns0) * 1000 * 60 / seconds), "ms/min",
               "over %d s after READY, 1,000 focal points, 200 events (schedstat; %.0f ms in 10 ms ticks)"
               % (seconds, (cpu1 - cpu0) * 1000))
        figure("idle RSS", "%.1f" % rss, "MiB", "VmRSS at the end; target < 15")
        figure("peak RSS (start)", "%.1f" % hwm, "MiB", "VmHWM: the start-up reconcile")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


def scale(work, sizes, events):
    for n in sizes:
        config = os.path.join(work, "scale-%d" % n)
        gen(config, "--focal", n, "--events", events)
        out = os.path.join(work, "check.out")
        secs, rss, _ = timed([HERALD, "--config", config, "check"], stdout=open(out, "w"))
        sends = re.search(r"(\d+) sends planned in all", open(out).read())
        figure("check %d" % n, "%.2f" % secs, "s", "peak RSS %.0f MiB; %s sends"
               % (rss, sends.group(1) if sends else "?"))
        secs, rss, _ = timed([HERALD, "--config", config, "plan"], stdout=subprocess.DEVNULL)
        figure("plan %d" % n, "%.2f" % secs, "s", "peak RSS %.0f MiB; one line a send, to /dev/null" % rss)
        secs, rss, _ = timed([HERALD, "--config", config, "plan", "--json"], stdout=subprocess.DEVNULL)
        figure("plan --json %d" % n, "%.2f" % secs, "s", "peak RSS %.0f MiB" % rss)


QUOTA_LIMITS = [
    ("Exchange Online", "per_minute = 30\nper_day = 10000"),
    ("Google Workspace", "per_day = 2000"),
]


def quota(work, n, events, runs):
    """`herald check` on the scale shape without limits, then with each
    relay's: the difference is the foresight of the limits (releases and
    departures of every slot, the hours and days over)."""
    plain = os.path.join(work, "scale-%d" % n)
    gen(plain, "--focal", n, "--events", events)
    configs = [("no limits", plain)]
    for i, (relay, limits) in enumerate(QUOTA_LIMITS):
        config = os.path.join(work, "quota-%d-%d" % (n, i))
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(plain, config)
        toml = os.path.join(config, "herald.toml")
        text = open(toml).read().replace('transport = "maildir"', 'transport = "smtp"', 1)
        text += '\n[delivery.smtp]\nhost = "smtp.example.org"\n%s\n' % limits
        open(toml, "w").write(text)
        configs.append((relay, config))
    # Without an outbox to read: the state directory is an empty one of its own.
    env = dict(os.environ, HERALD_STATE_DIR=os.path.join(work, "quota-state"))
    base = None
    for relay, config in configs:
        times = []
        for _ in range(runs):
            out = os.path.join(work, "quota.out")
            secs, rss, _ = timed([HERALD, "--config", config, "check"], stdout=open(out, "w"), env=env)
            times.append(secs)
        text = open(out).read()
        late = re.search(r"warning: (\d+) slots? would leave late", text)
        days = re.search(r"warning: (\d+) days? \(UTC\)", text)
        median = sorted(times)[len(times) // 2]
        base = median if base is None else base
        figure("check %d, %s" % (n, relay), " / ".join("%.2f" % t for t in times), "s",
               "peak RSS %.0f MiB; foresight %+.2f s (medians); %s late slots, %s days over"
               % (rss, median - base, late.group(1) if late else 0, days.group(1) if days else 0))


def letter(path, rows):
    """A letter whose roadmap table has `rows` rows: dates in order over 300
    days from 2017-10-01, five titles numbered up to 997, so many rows share
    a title and a day (the ids need days and counters to be unique)."""
    titles = ["Informal consultations on the draft", "1st reading", "Circulation of a revised draft",
              "Briefing by the co-facilitators", "Consultations with Member States"]
    start = dt.date(2017, 10, 1)
    with open(path, "w") as out:
        out.write("14 September 2017\n\nExcellency,\n\nRoadmap\n\n")
        for i in range(rows):
            day = start + dt.timedelta(days=i * 300 // rows)
            out.write("%d %s\t%s %d\n" % (day.day, day.strftime("%B"), titles[i % 5], i % 997))


def import_roadmap(work, sizes):
    config = os.path.join(REPO, "config")
    for rows in sizes:
        path = os.path.join(work, "letter-%d.txt" % rows)
        letter(path, rows)
        secs, rss, code = timed([HERALD, "--config", config, "import-roadmap", path, "--venue", "new-york",
                                 "--list", "member-states"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figure("import-roadmap %d rows" % rows, "%.2f" % secs, "s",
               "peak RSS %.0f MiB%s" % (rss, "" if code == 0 else "; exit %d" % code))


def start_reload(work, n, events):
    config = os.path.join(work, "scale-%d" % n)
    gen(config, "--focal", n, "--events", events)
    state = os.path.join(work, "start-state")
    shutil.rmtree(state, ignore_errors=True)
    for label in ("first start (empty outbox)", "restart (outbox filled)"):
        logpath = os.path.join(work, "start.log")
        t0 = time.time()
        proc = subprocess.Popen([HERALD, "--config", config, "run", "--state-dir", state,
                                 "--rehearse-from", REHEARSE_FROM], stderr=open(logpath, "w"))
        line = wait_for_line(logpath, r"herald::daemon: ready", 600)
        if line:
            figure("start to READY, %s" % label, "%.0f" % ((log_time(line) - t0) * 1000), "ms",
                   "%d focal points, %d events; %d sends put in the outbox"
                   % (n, events, planned_at_start(logpath)))
        if label.startswith("restart") and line:
            size = os.path.getsize(logpath)
            t1 = time.time()
            proc.send_signal(signal.SIGHUP)
            done = wait_for_line(logpath, r"configuration reloaded|refused", 600, after=size)
            if done:
                figure("reload (SIGHUP to reconciled)", "%.0f" % ((log_time(done) - t1) * 1000), "ms",
                       "unchanged configuration")
        proc.send_signal(signal.SIGTERM)
        proc.wait()


def precision(work, per_minute, minutes):
    sink = Sink()
    try:
        config = os.path.join(work, "precision")
        first = subprocess.run([sys.executable, GEN, "--out", config, "--precision", str(per_minute),
                                "--events", str(minutes), "--smtp-port", str(sink.port)],
                               capture_output=True, text=True, check=True).stdout.strip()
        first = dt.datetime.fromisoformat(first.replace("Z", "+00:00"))
        state = os.path.join(work, "precision-state")
        shutil.rmtree(state, ignore_errors=True)
        logpath = os.path.join(work, "precision.log")
        until = (first + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        subprocess.run([HERALD, "--config", config, "run", "--state-dir", state, "--until", until],
                       stderr=open(logpath, "w"), check=False)
        precision_figures(logpath, first, per_minute)
    finally:
        sink.stop()


def precision_figures(logpath, first, per_minute):
    """Lateness of each "sent" line: its timestamp minus its due instant,
    one minute (the lead) before its event, precision-K at `first` + K min."""
    late = []
    for line in open(logpath):
        key = re.search(r"herald::scheduler: sent send=reminder/precision-(\d+)/", line)
        if key:
            due = first + dt.timedelta(minutes=int(key.group(1)) - 1)
            late.append(log_time(line) - due.timestamp())
    if not late:
        figure("precision", "n/a", "", "no sends logged")
        return
    late.sort()
    pct = lambda p: late[min(len(late) - 1, int(p * len(late)))]
    figure("lateness p50", "%.0f" % (pct(0.50) * 1000), "ms", "%d sends, %d due each minute" % (len(late), per_minute))
    figure("lateness p99", "%.0f" % (pct(0.99) * 1000), "ms", "target < 1000")
    figure("lateness max", "%.0f" % (late[-1] * 1000), "ms", "")
    figure("lateness min", "%.0f" % (late[0] * 1000), "ms", "negative would mean sent early")


def limits(work, n, per_minute):
    """p50/p99 of (sent - due) for a burst of `n` reminders under
    `per_minute`, spread early (max_early 30m) and not (0s), each a
    --fast-forward rehearsal against smtp-sink; the outbox says when each
    send left (its attempt) and when it was due."""
    sink = Sink()
    try:
        due = "2030-01-01T09:00:00Z"
        due_t = dt.datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp()
        for max_early in ("30m", "0s"):
            config = os.path.join(work, "limits-%s" % max_early)
            gen(config, "--focal", n, "--burst", due, "--smtp-port", sink.port, "--max-connections", 2,
                "--per-minute", per_minute, "--max-early", max_early)
            state = os.path.join(work, "limits-state-%s" % max_early)
            shutil.rmtree(state, ignore_errors=True)
            secs, _, code = timed([HERALD, "--config", config, "run", "--state-dir", state, "--fast-forward",
                                   "--rehearse-from", "2030-01-01T08:00:00Z", "--until", "2030-01-01T10:00:00Z",
                                   "--real-recipients"],
                                  stderr=open(os.path.join(work, "limits.log"), "w"))
            db = sqlite3.connect(os.path.join(state, "outbox.sqlite3"))
            late = sorted(at - due_t for (at,) in db.execute(
                "SELECT a.at FROM attempts a JOIN sends s ON s.key = a.key WHERE a.outcome = 'sent'"))
            db.close()
            if not late:
                figure("limits max_early=%s" % max_early, "n/a", "", "nothing sent (exit %d)" % code)
                continue
            pct = lambda p: late[min(len(late) - 1, int(p * len(late)))]
            note = "%d reminders due at once, per_minute = %d; rehearsed in %.1f s" % (len(late), per_minute, secs)
            figure("sent - due p50, max_early=%s" % max_early, "%+.0f" % pct(0.50), "s", note)
            figure("sent - due p99, max_early=%s" % max_early, "%+.0f" % pct(0.99), "s", "")
            figure("sent - due min / max, max_early=%s" % max_early, "%+.0f / %+.0f" % (late[0], late[-1]), "s",
                   "late: %d of %d" % (sum(1 for x in late if x > 0), len(late)))
    finally:
        sink.stop()


DOVECOT_CONF = """base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
  }}
}}
"""


def inbox_idle(work, seconds):
    """The daemon with an IMAP inbox on IDLE, against a Dovecot 2.3 started
    here as tests/it/support/dovecot.rs does: the idle part's configuration
    (nothing due) plus [inbox], CPU over `seconds` while nothing arrives.
    The idle part, without [inbox], is the same daemon without the inbox."""
    if os.geteuid() != 0 or not shutil.which("dovecot"):
        sys.exit("inbox-idle runs Dovecot as root: apt-get install dovecot-imapd, and run as root")
    # Under /tmp: Dovecot's processes run as nobody and must reach the mail.
    d = tempfile.mkdtemp(prefix="herald-bench-dovecot-")
    os.makedirs(os.path.join(d, "mail"))
    os.chmod(d, 0o755)
    shutil.chown(os.path.join(d, "mail"), "nobody", "nogroup")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "basicConstraints=critical,CA:FALSE",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port, password = free_port(), "bench-secret"
    open(os.path.join(d, "dovecot.conf"), "w").write(DOVECOT_CONF.format(d=d, port=port, password=password))
    open(os.path.join(d, "password"), "w").write(password + "\n")
    dovecot = subprocess.Popen(["dovecot", "-c", os.path.join(d, "dovecot.conf"), "-F"])
    config = os.path.join(work, "inbox-idle")
    gen(config, "--focal", 1000, "--events", 200)
    with open(os.path.join(config, "herald.toml"), "a") as toml:
        toml.write('\n[inbox]\nimap = { host = "127.0.0.1", port = %d, username = "bench", password_file = "%s", '
                   'ca_file = "%s" }\n' % (port, os.path.join(d, "password"), os.path.join(d, "cert.pem")))
    state = os.path.join(work, "inbox-idle-state")
    shutil.rmtree(state, ignore_errors=True)
    logpath = os.path.join(work, "inbox-idle.log")
    proc = None
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        proc = subprocess.Popen([HERALD, "--config", config, "run", "--state-dir", state,
                                 "--rehearse-from", REHEARSE_FROM], stderr=open(logpath, "w"))
        if not wait_for_line(logpath, r"reading the inbox", 300):
            figure("inbox idle", "n/a", "", "the daemon did not read its inbox: see %s" % logpath)
            return
        time.sleep(5)
        if re.search(r"inbox cannot be read", open(logpath).read()):
            figure("inbox idle", "n/a", "", "the inbox cannot be read: see %s" % logpath)
            return
        cpu0, ns0 = proc_cpu(proc.pid), proc_cpu_ns(proc.pid)
        time.sleep(seconds)
        cpu1, ns1 = proc_cpu(proc.pid), proc_cpu_ns(proc.pid)
        rss, _ = proc_mem(proc.pid)
        figure("inbox IDLE CPU", "%.2f" % ((ns1 - ns0) * 1000 * 60 / seconds), "ms/min",
               "the daemon with an IMAP inbox on IDLE (renewed every 5 min) over %d s, 1,000 focal points, 200 events;"
               " target < 10 (schedstat; %.0f ms in 10 ms ticks)" % (seconds, (cpu1 - cpu0) * 1000))
        figure("inbox idle RSS", "%.1f" % rss, "MiB", "VmRSS of the daemon")
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        dovecot.terminate()
        dovecot.wait()
        shutil.rmtree(d, ignore_errors=True)


def classify(work, n, runs):
    """herald inbox classify --json over the inbox corpus repeated to n
    messages: messages a second (the best of the runs), and the lines
    printed, which must be one per message."""
    corpus_dir = os.path.join(REPO, "tests", "fixtures", "inbox")
    corpus = sorted(f for f in os.listdir(corpus_dir) if f.endswith(".eml"))
    out = os.path.join(work, "classify")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    files = []
    for i in range(n):
        name = corpus[i % len(corpus)]
        path = os.path.join(out, "%05d-%s" % (i, name))
        shutil.copyfile(os.path.join(corpus_dir, name), path)
        files.append(path)
    size = sum(os.path.getsize(f) for f in files)
    # An empty state directory: no outbox to look sends up in, so the
    # figure is classification alone.
    state = os.path.join(work, "classify-state")
    os.makedirs(state, exist_ok=True)
    cmd = [HERALD, "--config", os.path.join(REPO, "config"), "inbox", "classify", "--json",
           "--state-dir", state] + files
    best = None
    for _ in range(runs):
        with open(os.path.join(work, "classify.jsonl"), "w") as sink:
            seconds, rss, code = timed(cmd, stdout=sink, stderr=subprocess.DEVNULL)
        if code != 0:
            sys.exit("herald inbox classify failed with status %d" % code)
        if best is None or seconds < best[0]:
            best = (seconds, rss)
    with open(os.path.join(work, "classify.jsonl")) as f:
        lines = sum(1 for _ in f)
    seconds, rss = best
    figure("classify_messages_per_second", "%.0f" % (n / seconds), "msg/s",
           "%d messages (%d distinct, %.1f MB), best of %d runs, %.2f s" % (n, len(corpus), size / 1e6, runs, seconds))
    figure("classify_peak_rss", "%.1f" % rss, "MiB")
    figure("classify_lines", lines, "lines", "one JSON line per message")


WRK_POST = """wrk.method = "POST"
wrk.body = "List-Unsubscribe=One-Click"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def wrk_figures(output):
    """Requests a second and p99 (ms) from `wrk --latency`."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99


def web(work, n, connections, wrk_connections):
    """The burst of the throughput part with [http] on, alone and then while
    wrk loads /metrics and the unsubscribe POST."""
    import base64
    import hashlib
    import hmac
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    sink = Sink()
    try:
        due = "2030-01-01T09:00:00Z"
        config = os.path.join(work, "web")
        gen(config, "--focal", n, "--burst", due, "--smtp-port", sink.port, "--max-connections", connections)
        secret = b"bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"
        with open(os.path.join(config, "link-secret"), "wb") as f:
            f.write(secret + b"\n")
        os.chmod(os.path.join(config, "link-secret"), 0o600)
        public, admin = free_port(), free_port()
        with open(os.path.join(config, "herald.toml"), "a") as f:
            f.write('\n[http]\npublic = "127.0.0.1:%d"\npublic_url = "http://127.0.0.1:%d"\n'
                    'admin = "127.0.0.1:%d"\nsecret_file = "link-secret"\n' % (public, public, admin))
        # The reader's token, as herald signs it (src/tokens.rs).
        address = "fp1@mission1.example.org"
        tag = hmac.new(secret, b"unsubscribe\neveryone\n" + address.encode(), hashlib.sha256).digest()[:16]
        token = "u1.everyone." + base64.urlsafe_b64encode(tag).decode().rstrip("=")
        script = os.path.join(work, "web-post.lua")
        with open(script, "w") as f:
            f.write(WRK_POST)

        def burst(label):
            state = os.path.join(work, "web-state")
            shutil.rmtree(state, ignore_errors=True)
            log = os.path.join(work, "web-%s.log" % label)
            start = time.monotonic()
            proc = subprocess.Popen([HERALD, "--config", config, "run", "--state-dir", state, "--fast-forward",
                                     "--rehearse-from", "2030-01-01T08:59:00Z", "--until", "2030-01-01T09:01:00Z",
                                     "--real-recipients"], stderr=open(log, "w"))
            return proc, start, log

        def finish(proc, start, log):
            proc.wait()
            secs = time.monotonic() - start
            sent = sum(int(c) for c in re.findall(r"dispatched sent=(\d+)", open(log).read()))
            return secs, sent

        quiet, sent = finish(*burst("alone"))
        figure("web: burst alone", "%.2f" % quiet, "s", "%d sent, [http] on, no requests" % sent)

        proc, start, log = burst("loaded")
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", admin), 0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        # Both loads for as long as the burst took alone, each with half
        # of wrk's connections, one thread each (2 cores in all).
        seconds = "%ds" % max(2, round(quiet))
        half = str(max(1, wrk_connections // 2))
        metrics = subprocess.Popen(["wrk", "--latency", "-t1", "-c", half, "-d", seconds,
                                    "http://127.0.0.1:%d/metrics" % admin],
                                   stdout=subprocess.PIPE, text=True)
        post = subprocess.Popen(["wrk", "--latency", "-t1", "-c", half, "-d", seconds, "-s", script,
                                 "http://127.0.0.1:%d/unsubscribe/%s" % (public, token)],
                                stdout=subprocess.PIPE, text=True)
        loaded, sent = finish(proc, start, log)
        for name, wrk in (("/metrics", metrics), ("POST /unsubscribe", post)):
            out = wrk.communicate()[0]
            rate, p99 = wrk_figures(out)
            figure("web: %s" % name, "%.0f" % rate, "req/s", "p99 %.2f ms (target < 10 ms), %s connections, during the burst" % (p99, half))
        figure("web: burst under load", "%.2f" % loaded, "s",
               "%d sent; slowdown %+.1f %% (target < 10 %%)" % (sent, (loaded / quiet - 1) * 100))

        # A paced load, as readers and a scraper make it: wrk's delay()
        # holds each connection's next request back, so the rate is set
        # (one connection each: 50 scrapes and 50 POSTs a second), not as
        # fast as answers come. Each POST is a different reader's, so each
        # writes (a suppression) while the burst commits its outcomes. The
        # burst alone and under this load alternate three times: a burst's
        # time varies by several per cent from run to run on its own.
        paced_get = os.path.join(work, "web-paced-get.lua")
        with open(paced_get, "w") as f:
            f.write("function delay() return 20 end\n")
        paced_post = os.path.join(work, "web-paced-post.lua")
        tokens = []
        for i in range(1, 2001):
            reader = "fp%d@mission%d.example.org" % (i, i % 193)
            tag = hmac.new(secret, b"unsubscribe\neveryone\n" + reader.encode(), hashlib.sha256).digest()[:16]
            tokens.append("u1.everyone." + base64.urlsafe_b64encode(tag).decode().rstrip("="))
        with open(paced_post, "w") as f:
            f.write(WRK_POST)
            f.write("tokens = {%s}\n" % ", ".join('"%s"' % t for t in tokens))
            f.write("i = 0\n"
                    "function request()\n"
                    "  i = i % #tokens + 1\n"
                    "  return wrk.format(nil, \"/unsubscribe/\" .. tokens[i])\n"
                    "end\n"
                    "function delay() return 20 end\n")
        alone, paced, gets, posts = [], [], [], []
        for _ in range(3):
            alone.append(finish(*burst("alone"))[0])
            proc, start, log = burst("paced")
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", admin), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.01)
            seconds = "%ds" % max(2, round(alone[-1]))
            metrics = subprocess.Popen(["wrk", "--latency", "-t1", "-c1", "-d", seconds, "-s", paced_get,
                                        "http://127.0.0.1:%d/metrics" % admin],
                                       stdout=subprocess.PIPE, text=True)
            post = subprocess.Popen(["wrk", "--latency", "-t1", "-c1", "-d", seconds, "-s", paced_post,
                                     "http://127.0.0.1:%d/" % public],
                                    stdout=subprocess.PIPE, text=True)
            paced.append(finish(proc, start, log)[0])
            gets.append(wrk_figures(metrics.communicate()[0]))
            posts.append(wrk_figures(post.communicate()[0]))
        median = lambda xs: sorted(xs)[len(xs) // 2]
        figure("web: burst alone, median of 3", "%.2f" % median(alone), "s",
               "runs %s" % ", ".join("%.2f" % x for x in alone))
        for name, runs in (("/metrics", gets), ("POST /unsubscribe", posts)):
            figure("web: %s paced during the burst" % name, "%.2f" % median([p for _, p in runs]), "ms p99",
                   "target < 10 ms; %.0f req/s; runs %s" % (median([r for r, _ in runs]),
                                                            ", ".join("%.2f" % p for _, p in runs)))
        figure("web: burst under the paced load, median of 3", "%.2f" % median(paced), "s",
               "slowdown %+.1f %% (target < 10 %%); runs %s" % ((median(paced) / median(alone) - 1) * 100,
                                                               ", ".join("%.2f" % x for x in paced)))

        # The same requests with the daemon idle after the burst, for
        # comparison: the POST and /metrics alone.
        state = os.path.join(work, "web-idle-state")
        shutil.rmtree(state, ignore_errors=True)
        idle_proc = subprocess.Popen([HERALD, "--config", config, "run", "--state-dir", state,
                                      "--rehearse-from", "2030-01-01T10:00:00Z", "--real-recipients"],
                                     stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", admin), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            for name, args in (("/metrics", ["http://127.0.0.1:%d/metrics" % admin]),
                               ("POST /unsubscribe", ["-s", script, "http://127.0.0.1:%d/unsubscribe/%s" % (public, token)])):
                out = subprocess.run(["wrk", "--latency", "-t2", "-c", str(wrk_connections), "-d", "5s"] + args,
                                     capture_output=True, text=True).stdout
                rate, p99 = wrk_figures(out)
                figure("web: %s, daemon idle" % name, "%.0f" % rate, "req/s", "p99 %.2f ms, %d connections" % (p99, wrk_connections))
        finally:
            idle_proc.terminate()
            idle_proc.wait()
    finally:
        sink.stop()


class Postgres:
    """Debian's PostgreSQL on a free loopback port, in a directory of its own
    under /tmp (as the user postgres when run as root: initdb refuses root).
    Durable as installed (fsync on), as the SQLite outbox is."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            sys.exit("PostgreSQL is missing: apt-get install postgresql")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="herald-bench-pg-", dir="/tmp")
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        subprocess.run(self.as_user + [os.path.join(self.bin, "initdb"), "-D", data, "-U", "herald", "-A", "trust",
                                       "-E", "UTF8", "--locale=C.UTF-8"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(self.as_user + [os.path.join(self.bin, "pg_ctl"), "-D", data, "-l",
                                       os.path.join(self.dir, "log"), "-w", "-o",
                                       "-c listen_addresses=127.0.0.1 -p %d -k %s" % (self.port, self.dir), "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.url = "postgres://herald@127.0.0.1:%d/herald" % self.port
        self.sql("CREATE DATABASE herald", database="postgres")

    def sql(self, query, database="herald"):
        out = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "herald",
                              "-d", database, "-c", query], capture_output=True, text=True)
        return out.stdout.strip()

    def reset(self):
        self.sql("DROP DATABASE IF EXISTS herald WITH (FORCE)", database="postgres")
        self.sql("CREATE DATABASE herald", database="postgres")

    def stop(self):
        subprocess.run(self.as_user + [os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                                       "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def node_burst(work, n, connections, pg, nodes, lease="30s", kill_after=None, pin=False):
    """A burst of `n` reminders due 20 to 80 s from now, sent by `nodes` daemons
    (`herald run`, not a rehearsal: several nodes run on real time), on
    SQLite (pg None, one node) or on one PostgreSQL database. Returns the
    seconds from the first message recorded sent to the last, and the
    failover time when `kill_after` messages are sent and node a is killed.
    With `pin`, node i runs on core i alone (taskset), as if each node had
    a machine of one core; the database and the sink run where they may."""
    sink = Sink()
    procs = []
    try:
        # The roadmap's times are to the minute: the next whole minute at
        # least 20 s away, so that every node is up before the burst.
        due = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=80)).replace(second=0, microsecond=0)
        config = os.path.join(work, "nodes")
        shutil.rmtree(config, ignore_errors=True)
        gen(config, "--focal", n, "--burst", due.strftime("%Y-%m-%dT%H:%M:%SZ"), "--smtp-port", sink.port,
            "--max-connections", connections)
        if pg:
            pg.reset()
            with open(os.path.join(config, "herald.toml"), "a") as f:
                f.write('\n[state]\ndatabase = "%s"\nlease = "%s"\n' % (pg.url, lease))
        for i in range(nodes):
            node = "abcdefgh"[i]
            state = os.path.join(work, "nodes-state-" + node)
            shutil.rmtree(state, ignore_errors=True)
            env = dict(os.environ, HERALD_NODE=node)
            log = open(os.path.join(work, "nodes-%s.log" % node), "w")
            cmd = [HERALD, "--config", config, "run", "--state-dir", state]
            if pin:
                cmd = ["taskset", "-c", str(i % os.cpu_count())] + cmd
            procs.append(subprocess.Popen(cmd, env=env, stderr=log, stdout=subprocess.DEVNULL))
            time.sleep(0.5)

        def sent():
            if pg:
                text = pg.sql("SELECT count(*) FROM sends WHERE state = 'sent'")
                return int(text) if text.isdigit() else 0
            path = os.path.join(work, "nodes-state-a", "outbox.sqlite3")
            try:
                with sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5) as db:
                    return db.execute("SELECT count(*) FROM sends WHERE state = 'sent'").fetchone()[0]
            except sqlite3.Error:
                return 0

        deadline = time.monotonic() + 600
        first = None
        killed = None
        failover = None
        while time.monotonic() < deadline:
            count = sent()
            now = time.monotonic()
            if count > 0 and first is None:
                first = now
            if kill_after is not None and killed is None and count >= kill_after:
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                killed = now
            if killed is not None and failover is None:
                taken = pg.sql("SELECT count(*) FROM sends s WHERE state = 'sent' AND EXISTS "
                               "(SELECT 1 FROM attempts a WHERE a.key = s.key AND a.outcome = 'taken over')")
                if taken.isdigit() and int(taken) > 0:
                    failover = now - killed
            if count >= n:
                break
            time.sleep(0.05)
        done = time.monotonic()
        per_node = {}
        if pg:
            for line in pg.sql("SELECT node, count(*) FROM attempts WHERE outcome = 'sent' GROUP BY node").splitlines():
                node, sent_by = line.split("|")
                per_node[node] = int(sent_by)
        return (done - first if first else None), count, failover, per_node
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        sink.stop()


def nodes(work, n, connections, runs):
    """The burst on one node with SQLite, one with PostgreSQL, two with
    PostgreSQL; then the failover time after a SIGKILL of a sending node."""
    pg = Postgres()
    try:
        configurations = (("1 node, SQLite", None, 1, False), ("1 node, PostgreSQL", pg, 1, False),
                          ("2 nodes, PostgreSQL", pg, 2, False),
                          ("1 node on 1 core, PostgreSQL", pg, 1, True),
                          ("2 nodes on 1 core each, PostgreSQL", pg, 2, True))
        for label, db, count, pin in configurations:
            rates = []
            for _ in range(runs):
                secs, sent, _, per_node = node_burst(work, n, connections, db, count, pin=pin)
                rates.append(sent / secs if secs else 0)
            rates.sort()
            figure("burst, " + label, "%.0f" % rates[len(rates) // 2], "msg/s",
                   "median of %d bursts of %d (%s); first to last message sent%s" % (
                       runs, n, ", ".join("%.0f" % r for r in rates),
                       "" if count == 1 else "; last run per node %s" % per_node))
        for lease in ("30s", "10s"):
            _, _, failover, _ = node_burst(work, n, connections, pg, 2, lease=lease, kill_after=n // 4)
            figure("failover, lease %s" % lease, "%.1f" % failover if failover else "none", "s",
                   "SIGKILL of node a mid-burst to node b's first send of a's in-flight sends recorded sent; "
                   "target < lease + 5 s")
    finally:
        pg.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("parts", nargs="*",
                    default=["throughput", "idle", "scale", "quota", "start", "precision", "import", "limits",
                             "classify", "web", "nodes"])
    ap.add_argument("--work", default=os.path.join(REPO, "target", "bench"))
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--attachment-size", type=int, default=2_000_000, help="bytes of the attachment part's file")
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--inbox-idle-seconds", type=int, default=360,
                    help="long enough to include one renewal of IDLE (every 5 minutes)")
    ap.add_argument("--sizes", default="1000,10000,100000", help="focal points for the scale part")
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--quota-runs", type=int, default=3, help="runs of each check of the quota part")
    ap.add_argument("--import-rows", default="16000,32000,64000", help="rows of the import part's letters")
    ap.add_argument("--precision-minutes", type=int, default=3)
    ap.add_argument("--precision-per-minute", type=int, default=50)
    ap.add_argument("--limits-reminders", type=int, default=600)
    ap.add_argument("--limits-per-minute", type=int, default=30)
    ap.add_argument("--classify-messages", type=int, default=10000)
    ap.add_argument("--wrk-connections", type=int, default=8, help="wrk's connections in the web part")
    ap.add_argument("--classify-runs", type=int, default=3)
    ap.add_argument("--node-runs", type=int, default=3, help="bursts of each configuration of the nodes part")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    print("# %s, %d cores, load average %s" % (dt.date.today(), os.cpu_count(), os.getloadavg()[0]))
    for part in a.parts:
        if part == "throughput":
            throughput(a.work, a.messages, a.connections)
        elif part == "attachment":
            attachment(a.work, a.messages, a.connections, a.attachment_size)
        elif part == "idle":
            idle(a.work, a.idle_seconds)
        elif part == "inbox-idle":
            inbox_idle(a.work, a.inbox_idle_seconds)
        elif part == "scale":
            scale(a.work, [int(s) for s in a.sizes.split(",")], a.events)
        elif part == "quota":
            quota(a.work, 10000, a.events, a.quota_runs)
        elif part == "start":
            start_reload(a.work, 10000, a.events)
        elif part == "precision":
            precision(a.work, a.precision_per_minute, a.precision_minutes)
        elif part == "import":
            import_roadmap(a.work, [int(s) for s in a.import_rows.split(",")])
        elif part == "limits":
            limits(a.work, a.limits_reminders, a.limits_per_minute)
        elif part == "web":
            web(a.work, a.messages, a.connections, a.wrk_connections)
        elif part == "nodes":
            nodes(a.work, a.messages, a.connections, a.node_runs)
        elif part == "classify":
            classify(a.work, a.classify_messages, a.classify_runs)
        else:
            sys.exit("unknown part %s" % part)
    print("# load average at the end %s" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
