#!/usr/bin/python3
"""Integration tests of `keeld --dev DIR`: the self-contained development
appliance (SoftHSM2 token, CRK, CA, server and client certificates, config)
made on the first start and reused, keys included, on later starts.

Synchronisation is on events only: keeld's "READY <port>" line on stdout, its
log lines, its exit. Timeouts are guards that fail a stuck test.

Run one test:  test_dev.py DevTest.test_first_start_serves_registered_client
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import unittest

from procwatch import GUARD, Process, memcheck
from test_server import frame, wait_closed

KEELD = os.environ.get("KEEL_KEELD", "")
KEELCTL = os.environ.get("KEEL_KEELCTL", "")

CERTS = ["certs/ca.crt", "certs/server.crt", "certs/server.key", "certs/client.crt",
         "certs/client.key", "secrets/ca.key", "secrets/user.pin", "secrets/so.pin",
         "clients/client.crt", "keeld.conf"]


class Keeld(Process):
    """keeld --dev DIR --listen 127.0.0.1:0; tests wait on its lines."""

    def __init__(self, d, extra=(), prefix=()):
        """|prefix| runs keeld through another program (prlimit, unshare)."""
        super().__init__([*prefix, *memcheck(), KEELD, "--dev", d, "--listen", "127.0.0.1:0", "--log-level",
                          "debug", *extra])
        self.port = None

    def ready(self):
        self.port = int(self.wait_line(self.out, r"^READY (\d+)$").group(1))
        return self

    def stop(self):
        """SIGTERM; returns the exit status once both streams are read."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def wait_exit(self):
        rc = self.proc.wait(GUARD)
        with self.cv:
            while self.out[-1:] != [None] or self.err[-1:] != [None]:
                if not self.cv.wait(GUARD):
                    break
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(GUARD)


def digests(d):
    out = {}
    for name in CERTS:
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def client_ctx(d, cert="certs/client.crt", key="certs/client.key"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(d, "certs/ca.crt"))
    ctx.load_cert_chain(os.path.join(d, cert), os.path.join(d, key))
    return ctx


def connect(port, ctx):
    raw = socket.create_connection(("127.0.0.1", port), GUARD)
    # The server certificate names localhost and 127.0.0.1: both verify.
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def crk_list(d):
    """`keelctl hsm list` on the dev token (keeld stopped)."""
    env = dict(os.environ, SOFTHSM2_CONF=os.path.join(d, "softhsm/softhsm2.conf"))
    r = subprocess.run([KEELCTL, "hsm", "list", "--module", "softhsm2", "--token", "keel-dev",
                        "--pin-file", os.path.join(d, "secrets/user.pin")],
                       capture_output=True, env=env, timeout=GUARD)
    if r.returncode != 0:
        raise AssertionError("keelctl hsm list: %s" % r.stderr.decode())
    return r.stdout.decode()


@unittest.skipUnless(KEELD and KEELCTL, "KEEL_KEELD and KEEL_KEELCTL not set")
class DevTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="keel-dev-test-")
        self.dir = os.path.join(self.tmp, "a", "dev")  # parents are made too
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.end()
            for f in (p.proc.stdout, p.proc.stderr):
                f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        k = Keeld(self.dir)
        self.procs.append(k)
        return k.ready()

    def assert_serves(self, k):
        """A TLS handshake with DIR/certs/client.* succeeds and the server
        identifies the client (it logs the registered subject)."""
        mark = k.mark()
        with connect(k.port, client_ctx(self.dir)) as s:
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            k.wait_line(k.err, r"debug: .*client .*keel-dev-client.* connected", mark)

    def test_first_start_serves_registered_client(self):
        k = self.start()
        out = "\n".join(l for l in k.out if l)
        for name in ("certs/ca.crt", "certs/server.crt", "certs/client.crt",
                     "certs/client.key", "keeld.conf"):
            self.assertIn(os.path.join(self.dir, name), out)
        self.assertRegex(out, r"openssl s_client .*-connect 127\.0\.0\.1:%d " % k.port)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        for key in ("certs/server.key", "certs/client.key", "secrets/ca.key",
                    "secrets/user.pin", "secrets/so.pin"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.dir, key)).st_mode), 0o600,
                             key)
        self.assertIn("CRK version 1 is active", k.stderr_text())
        self.assert_serves(k)
        self.assertEqual(k.stop(), 0)
        # No secret reached the log.
        for pin in ("user.pin", "so.pin"):
            with open(os.path.join(self.dir, "secrets", pin)) as f:
                self.assertNotIn(f.read().strip(), k.stderr_text() + "\n".join(
                    l for l in k.out if l))

    def test_unregistered_cert_refused(self):
        k = self.start()
        # Signed by the dev CA itself, but not registered: refused all the same.
        other = os.path.join(self.tmp, "other")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                        "/CN=stranger", "-days", "2", "-keyout", other + ".key",
                        "-CA", os.path.join(self.dir, "certs/ca.crt"),
                        "-CAkey", os.path.join(self.dir, "secrets/ca.key"),
                        "-addext", "extendedKeyUsage=clientAuth", "-out", other + ".crt"],
                       check=True, capture_output=True)
        mark = k.mark()
        try:
            s = connect(k.port, client_ctx(self.dir, other + ".crt", other + ".key"))
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
        else:
            with s:  # TLS 1.3: the client learns it on its first read
                try:
                    s.sendall(frame())
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    pass
                self.assertEqual(wait_closed(s), b"")
        k.wait_line(k.err, r"debug: .*(not registered|handshake failed)", mark)
        self.assert_serves(k)  # and it carries on
        self.assertEqual(k.stop(), 0)

    def test_restart_reuses_everything(self):
        k = self.start()
        self.assertEqual(k.stop(), 0)
        before, crks = digests(self.dir), crk_list(self.dir)
        self.assertRegex(crks, r"\b1\b")
        k = self.start()
        self.assert_serves(k)
        self.assertEqual(k.stop(), 0)
        self.assertNotIn("dev: creating", k.stderr_text())
        self.assertEqual(digests(self.dir), before)
        self.assertEqual(crk_list(self.dir), crks)

    def test_wrong_pin_exit_status(self):
        k = self.start()
        self.assertEqual(k.stop(), 0)
        pin_file = os.path.join(self.dir, "secrets/user.pin")
        with open(pin_file) as f:
            right = f.read().strip()
        wrong = "0" * len(right)
        with open(pin_file, "w") as f:
            f.write(wrong + "\n")
        k = Keeld(self.dir)
        self.procs.append(k)
        self.assertEqual(k.wait_exit(), 3)
        err = k.stderr_text()
        self.assertRegex(err, r"refused the PIN in .*user\.pin")
        self.assertNotIn(wrong, err)
        self.assertNotIn(right, err)

    def hsm(self, *args, pin_file="secrets/user.pin"):
        """keelctl hsm COMMAND on the dev token (keeld stopped): (status, stderr)."""
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(self.dir, "softhsm/softhsm2.conf"))
        r = subprocess.run([KEELCTL, "hsm", *args, "--module", "softhsm2", "--token", "keel-dev",
                            "--pin-file", os.path.join(self.dir, pin_file)],
                           capture_output=True, env=env, timeout=GUARD)
        return r.returncode, r.stderr.decode()

    def test_change_pin(self):
        """keelctl hsm change-pin (issue 9): the token takes the new PIN, keeld
        starts with it and refuses to with the old one; a PIN the token does
        not take changes nothing."""
        k = self.start()
        self.assertEqual(k.stop(), 0)
        old = os.path.join(self.dir, "secrets/user.pin")
        new = os.path.join(self.dir, "secrets/new.pin")
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"a new PIN, 29 characters long\n")
        os.close(fd)
        os.chmod(new, 0o644)
        status, err = self.hsm("change-pin", "--new-pin-file", new)
        self.assertEqual(status, 78, err)  # a PIN file others can read: refused
        os.chmod(new, 0o600)
        self.assertEqual(self.hsm("change-pin")[0], 64)  # no --new-pin-file
        status, err = self.hsm("change-pin", "--new-pin-file", new)
        self.assertEqual(status, 0, err)
        self.assertEqual(self.hsm("list")[0], 77)  # the old PIN no longer opens the token
        k = Keeld(self.dir)
        self.procs.append(k)
        self.assertEqual(k.wait_exit(), 3)  # and keeld refuses to start with it
        shutil.copy(new, old)
        self.assertEqual(self.hsm("list")[0], 0)
        with open(os.path.join(self.dir, "secrets/short.pin"), "w") as f:
            f.write("abc\n")
        os.chmod(os.path.join(self.dir, "secrets/short.pin"), 0o600)
        status, err = self.hsm("change-pin", "--new-pin-file",
                               os.path.join(self.dir, "secrets/short.pin"))
        self.assertEqual(status, 65, err)
        self.assertIn("refused the new PIN", err)
        k = self.start()  # the new PIN still opens the token
        self.assert_serves(k)
        self.assertEqual(k.stop(), 0)
        self.assertNotIn("29 characters", k.stderr_text())

    def test_config_without_hsm_refused(self):
        # Outside --dev: a config with no hsm section names the file and stops.
        os.makedirs(os.path.join(self.tmp, "clients"))
        for name in ("server.crt", "server.key"):
            open(os.path.join(self.tmp, name), "w").close()
        conf = os.path.join(self.tmp, "keeld.conf")
        with open(conf, "w") as f:
            f.write('tls: { certificate = "server.crt"; private_key = "server.key"; };\n'
                    'clients: { certificates_dir = "clients"; };\n')
        r = subprocess.run([KEELD, "--config", conf], capture_output=True, timeout=GUARD)
        self.assertEqual(r.returncode, 1)
        self.assertIn(conf + ": keeld needs the hsm and store sections", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
