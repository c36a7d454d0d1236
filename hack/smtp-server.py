"""A real SMTP server (aiosmtpd) that keeps every accepted message as a file, for the e-mail
tests and the demo.

Each message becomes MAILDIR/<n>.json: {"mailFrom", "rcptTos", "tls" (whether the session was
encrypted when DATA came), "login" (the authenticated user, if any), "data" (the message as
received), and, decoded from it, "messageId", "subject", "to", "cc", "text" (the text/plain
part) and "html" (the text/html part)}. A file appears whole (written, then renamed), so a reader never sees half of one.
When it listens, the server prints one line `listening HOST:PORT` to stdout (PORT 0 picks a
free port).
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd itself still sets the deprecated Session.login_data on every login.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


class Store:
    """Writes accepted messages into the maildir, or refuses them all with --reject."""

    def __init__(self, maildir, reject):
        self.maildir = maildir
        self.reject = reject
        self.numbers = itertools.count(1 + len(os.listdir(maildir)))

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            return self.reject
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            # session.ssl after STARTTLS; the transport's SSL object with implicit TLS.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "login": (
                session.auth_data.login.decode()
                if session.authenticated and isinstance(session.auth_data, LoginPassword)
                else None
            ),
            "data": envelope.content.decode("utf-8", "replace"),
        }
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record["messageId"] = message["Message-ID"]
        record["subject"] = message["Subject"]
        record["to"] = message["To"]
        record["cc"] = message["Cc"]
        for kind in ("plain", "html"):
            part = message.get_body(preferencelist=(kind,))
            record["text" if kind == "plain" else kind] = part.get_content() if part else None
        number = next(self.numbers)
        final = os.path.join(self.maildir, f"{number:04}.json")
        partial = final + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.rename(partial, final)
        return "250 2.0.0 stored as " + os.path.basename(final)


def authenticator(expected):
    user, _, password = expected.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1:0)")
    parser.add_argument("--maildir", required=True, help="directory for the received messages")
    parser.add_argument("--tls-cert", help="PEM certificate: offer STARTTLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--implicit-tls", action="store_true",
                        help="TLS from the first byte with --tls-cert (SMTPS) instead of STARTTLS")
    parser.add_argument("--require-starttls", action="store_true",
                        help="refuse everything but EHLO, NOOP, QUIT and STARTTLS before STARTTLS")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (over TLS)")
    parser.add_argument("--reject", metavar="REPLY",
                        help='answer DATA with this reply, e.g. "451 4.3.0 mailbox busy"')
    args = parser.parse_args()

    os.makedirs(args.maildir, exist_ok=True)
    host, _, port = args.listen.rpartition(":")
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    options = {}
    if args.auth:
        options = dict(
            authenticator=authenticator(args.auth),
            auth_required=True,
            # aiosmtpd tracks STARTTLS only; with implicit TLS every session is encrypted.
            auth_require_tls=tls_context is not None and not args.implicit_tls,
        )
    store = Store(args.maildir, args.reject)

    implicit = tls_context if args.implicit_tls else None

    def factory():
        return SMTP(
            store,
            hostname="smtp.test",
            tls_context=None if implicit else tls_context,
            require_starttls=args.require_starttls,
            data_size_limit=1024 * 1024,
            **options,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, host, int(port), ssl=implicit))
    address = server.sockets[0].getsockname()
    print(f"listening {address[0]}:{address[1]}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
