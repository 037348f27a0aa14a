#!/usr/bin/env python3
"""A real SMTP server for herald's tests: aiosmtpd on 127.0.0.1, one file per message.

Usage: aiosmtpd_sink.py --dir DIR [--starttls] [--user NAME --password SECRET]

Prints "PORT <n>" once it listens on an ephemeral port. Each message is written
to DIR/NNNN.eml exactly as received (dot-unstuffed), next to DIR/NNNN.json with
the envelope, whether it came over TLS, and who had logged in.

With --starttls it first makes a throwaway CA and a certificate for 127.0.0.1
with the openssl command, writes the CA to DIR/tls/ca.pem for the client to
trust, and refuses everything but EHLO, STARTTLS and QUIT before TLS. With
--user it offers AUTH PLAIN and LOGIN (only after STARTTLS, when that is on)
and accepts that one user.

The protocol is aiosmtpd's SMTP class served by a plain asyncio server: its
Controller cannot listen on port 0 (it probes the port it was given), and a
port picked in advance could be taken by another test in between.

It exits when its standard input closes, so it never outlives the test that
started it, even one that was killed.
"""

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as error:
    print(f"aiosmtpd is not importable ({error}): pip install aiosmtpd", file=sys.stderr)
    sys.exit(3)


def make_tls_context(directory):
    """A CA and a server certificate signed by it. rustls will not take a
    self-signed certificate as its own trust anchor, hence the two steps."""
    os.makedirs(directory, exist_ok=True)
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2",
            "-subj", "/CN=herald test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=127.0.0.1")
    with open(path("server.ext"), "w") as ext:
        ext.write("basicConstraints=critical,CA:FALSE\n"
                  "keyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=serverAuth\n"
                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile", path("server.ext"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(path("server.pem"), path("server.key"))
    return context


class Sink:
    """Writes each message to its own file, before the 250 reply goes out."""

    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.directory, f"{self.count:04d}")
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with open(stem + ".json", "w") as meta:
            json.dump({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": session.ssl is not None,
                "login": login,
            }, meta)
        # Written aside and renamed, so a reader never sees half a message.
        with open(stem + ".part", "wb") as body:
            body.write(envelope.original_content)
        os.replace(stem + ".part", stem + ".eml")
        return f"250 2.0.0 Ok: queued as sink-{self.count}"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login == self.user \
                and auth_data.password == self.password:
            return AuthResult(success=True, auth_data=auth_data)
        # Not handled: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)


async def main(args):
    options = {"hostname": "sink.test"}
    if args.starttls:
        options.update(tls_context=make_tls_context(os.path.join(args.dir, "tls")), require_starttls=True)
    if args.user:
        options.update(authenticator=Authenticator(args.user, args.password or ""),
                       auth_require_tls=args.starttls)
    handler = Sink(args.dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **options), "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--password")
    asyncio.run(main(parser.parse_args()))
