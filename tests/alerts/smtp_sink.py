#!/usr/bin/env python3
"""An SMTP server on 127.0.0.1 for tests/alerts.rs (aiosmtpd): every message it accepts is
written to OUTDIR as one file. --starttls CERT KEY offers STARTTLS; --user U --password P
requires AUTH (PLAIN or LOGIN) with those; without --starttls AUTH is allowed in the clear.
Prints "ready PORT" once listening."""
import argparse, os, ssl, sys, time, uuid
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

ap = argparse.ArgumentParser()
ap.add_argument("outdir")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
ap.add_argument("--user")
ap.add_argument("--password")
a = ap.parse_args()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(a.outdir, f"{time.time():.6f}-{uuid.uuid4().hex}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == a.user and data.password.decode() == a.password
    return AuthResult(success=ok, handled=False)

kw = {}
if a.starttls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*a.starttls)
    kw.update(tls_context=ctx, require_starttls=True)
if a.user:
    kw.update(authenticator=auth, auth_required=True, auth_require_tls=bool(a.starttls))
port = a.port
if port == 0:
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print(f"ready {port}", flush=True)
try:
    sys.stdin.read()
finally:
    c.stop()
