#!/usr/bin/python3
"""Privilege separation (issue 8; docs/hardening.md "Privilege separation"):
keeld --dev runs as two processes. The network process (the key process's
only child) runs as nobody with no new privileges and has
neither the store nor the token open nor the PKCS#11 module mapped; either
process ending takes the other down; SIGTERM drains both; an administrator's
change reaches the network process before it is answered."""

import os
import pwd
import re
import select
import shutil
import signal
import ssl
import subprocess
import unittest

from kmipwire import OP_CREATE, OP_DISCOVER_VERSIONS, create_aes, op, request
from procwatch import MEMCHECK
from test_dev import GUARD, KEELCTL, Keeld
from prometheus_client.parser import text_string_to_metric_families
from test_admin import UnixHTTPConnection, answer
from test_harden import HardenCase, memory_snapshot, proc_status, snapshot_hits
from test_server import write_crl


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(c) for c in f.read().split()]


def open_files(pid):
    """Where each of pid's descriptors points."""
    d = "/proc/%d/fd" % pid
    out = []
    for fd in os.listdir(d):
        try:
            out.append(os.readlink(os.path.join(d, fd)))
        except FileNotFoundError:
            pass  # closed meanwhile
    return out


def mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


def wait_gone(pid):
    """Waits (GUARD at most) for pid, not our child, to end; True when it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], GUARD)[0])
    finally:
        os.close(fd)


def scrape(case):
    """The key process's /metrics over the admin socket: {(name, labels): value}."""
    conn = UnixHTTPConnection(os.path.join(case.dir, "admin.sock"))
    try:
        status, text = answer(conn, "GET", "/metrics")
    finally:
        conn.close()
    case.assertEqual(status, 200)
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


@unittest.skipUnless(os.geteuid() == 0, "needs root, to start keeld as root")
class PrivsepTest(HardenCase):

    def net_pid(self):
        kids = children(self.k.proc.pid)
        self.assertEqual(len(kids), 1, kids)
        return kids[0]

    def test_network_process_holds_no_secret(self):
        self.serve_a_key()  # through both processes
        net, key = self.net_pid(), self.k.proc.pid
        nobody = pwd.getpwnam("nobody")
        st = proc_status(net)
        self.assertEqual(st["Uid"].split(), [str(nobody.pw_uid)] * 4)
        self.assertEqual(st["Gid"].split(), [str(nobody.pw_gid)] * 4)
        self.assertEqual(int(st["CapEff"], 16), 0)
        self.assertEqual(int(st["CapPrm"], 16), 0)
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        # Under memcheck the process is valgrind's tool, keeld within it.
        self.assertEqual(st["Name"].strip(), "memcheck-amd64-" if MEMCHECK else "keeld")
        # The key process has the store open and the token's module mapped,
        # which shows what the checks below look for is there to find.
        store = os.path.join(self.dir, "data")
        self.assertTrue(any(p.startswith(store) for p in open_files(key)), open_files(key))
        self.assertTrue("libsofthsm2" in mapped(key))
        net_files = open_files(net)
        for secret in (store, os.path.join(self.dir, "softhsm"), os.path.join(self.dir, "secrets"),
                       os.path.join(self.dir, "certs")):
            self.assertFalse([p for p in net_files if p.startswith(secret)], net_files)
        # The PKCS#11 module was never loaded there (libp11-kit is linked
        # into keeld, so only the module itself tells).
        self.assertFalse("libsofthsm2" in mapped(net), "the network process loaded the module")

    def test_each_process_filtered_with_its_own_list(self):
        """Each process installs its own seccomp allow-list (sandbox.c): every
        thread of both shows Seccomp 2, the network process's list is the
        narrower one, and keeld serves through both (with a client
        certificate's dates checked, which glibc's time zone would otherwise
        be opened for). That openat kills the network process is test_sandbox's."""
        found = self.k.wait_line(self.k.err, r"seccomp: (off|\d+ system calls)")
        if found.group(1) == "off":
            self.skipTest("seccomp is off in sanitizer builds (docs/hardening.md)")
        net = self.net_pid()
        self.serve_a_key()
        for pid in (self.k.proc.pid, net):
            for tid in os.listdir("/proc/%d/task" % pid):
                self.assertEqual(proc_status(int(tid))["Seccomp"].strip(), "2", (pid, tid))
        counts = sorted(int(n) for n in re.findall(r"seccomp: (\d+) system calls allowed",
                                                   self.k.stderr_text()))
        self.assertEqual(len(counts), 2, counts)
        self.assertLess(counts[0], counts[1])
        self.assertEqual(children(self.k.proc.pid), [net])  # neither was killed

    def test_network_process_killed_ends_key_process(self):
        net = self.net_pid()
        os.kill(net, signal.SIGKILL)
        self.assertEqual(self.k.wait_exit(), 1)
        self.assertIn("the network process was killed by signal 9", self.k.stderr_text())

    def test_key_process_killed_ends_network_process(self):
        net = self.net_pid()
        self.k.proc.kill()
        self.k.proc.wait(GUARD)
        self.assertTrue(wait_gone(net), "network process %d outlived the key process" % net)

    def test_sigterm_drains_both(self):
        net = self.net_pid()
        self.serve_a_key()
        self.assertEqual(self.k.stop(), 0)
        self.assertTrue(wait_gone(net))
        self.assertIn("the network process exited with status 0", self.k.stderr_text())

    def test_metrics_of_the_network_process(self):
        """Connections and handshakes happen in the network process and are
        counted in the key process's /metrics."""
        ok = ("keel_tls_handshakes_total", frozenset({"result": "ok"}.items()))
        before = scrape(self)
        with self.conn() as c:
            self.call1(c, OP_CREATE, create_aes())
            during = scrape(self)
        self.assertEqual(during[("keel_tls_connections", frozenset())], 1)
        self.assertEqual(during[ok], before[ok] + 1)

    def test_sighup_reloads_network_process(self):
        mark = self.k.mark()
        os.kill(self.k.proc.pid, signal.SIGHUP)
        self.k.wait_line(self.k.err, r"reloaded certificates and client registrations", mark)
        self.serve_a_key()


@unittest.skipUnless(os.geteuid() == 0, "needs root, to start keeld as root")
class PrivsepLoopsTest(HardenCase):
    """Three loops in the network process (appliance/privsep/net.c): each
    forwards on its own channels to the one key process and takes the
    answers; every loop's counters reach /metrics; every loop's thread runs
    under the filter (installed after they started: TSYNC); SIGTERM ends
    them all."""
    LOOPS = 3
    conf = "network_threads = %d;" % LOOPS

    def served_on(self, c):
        """Discover Versions on |c|; the loop that holds it (keeld logs it at
        debug, as --dev runs)."""
        peer = "127.0.0.1:%d: " % c.sock.getsockname()[1]
        self.call1(c, OP_DISCOVER_VERSIONS, [])
        m = self.k.wait_line(self.k.err, re.escape(peer) + r"client .* connected on loop (\d+)")
        return int(m.group(1))

    def test_every_loop_serves_and_drains(self):
        net = children(self.k.proc.pid)[0]
        found = self.k.wait_line(self.k.err, r"seccomp: (off|\d+ system calls)")
        if found.group(1) != "off":
            tids = os.listdir("/proc/%d/task" % net)
            self.assertEqual(len(tids), self.LOOPS, tids)  # the loops, no other thread
            for tid in tids:
                self.assertEqual(proc_status(int(tid))["Seccomp"].strip(), "2", tid)
        loops = set()
        conns = [self.conn() for _ in range(40)]  # all open at once: 40 on 3 loops
        for c in conns:
            loops.add(self.served_on(c))
        self.assertEqual(loops, set(range(self.LOOPS)))
        self.assertEqual(scrape(self)[("keel_tls_connections", frozenset())], 40)
        for c in conns:
            c.sock.close()
        self.assertEqual(self.k.stop(), 0)
        self.assertTrue(wait_gone(net))
        self.assertIn("the network process exited with status 0", self.k.stderr_text())


@unittest.skipUnless(os.geteuid() == 0, "needs root, to start keeld as root")
class PrivsepUsersTest(HardenCase):
    """user = "daemon" owns the token and the store: the key process runs as
    daemon, the network process as nobody. Neither may signal the other, so
    SIGTERM reaches the network process as a frame, and it still drains."""
    conf = 'user = "daemon";'

    def prepare(self):
        pw = pwd.getpwnam("daemon")
        for sub in ("softhsm", "data"):
            for root, dirs, files in os.walk(os.path.join(self.dir, sub)):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.chown(name, pw.pw_uid, pw.pw_gid)
        for d in (self.tmp, self.dir):
            os.chmod(d, 0o711)

    def test_two_users_and_a_drain(self):
        key, net = self.k.proc.pid, children(self.k.proc.pid)[0]
        daemon, nobody = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
        self.assertEqual(proc_status(key)["Uid"].split(), [str(daemon.pw_uid)] * 4)
        self.assertEqual(proc_status(net)["Uid"].split(), [str(nobody.pw_uid)] * 4)
        with self.conn() as c:
            self.call1(c, OP_CREATE, create_aes())
        self.assertEqual(self.k.stop(), 0)
        self.assertTrue(wait_gone(net))

    def test_same_user_refused(self):
        self.assertEqual(self.k.stop(), 0)
        conf = os.path.join(self.dir, "keeld.conf")
        with open(conf, "a") as f:
            f.write('privsep: { user = "daemon"; };\n')
        k = Keeld(self.dir)
        self.procs.append(k)
        self.assertEqual(k.wait_exit(), 1)
        self.assertIn("privsep.user daemon: must differ from user", k.stderr_text())


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
class PrivsepCapabilitiesTest(HardenCase):
    """As keeld.service starts keeld on the appliance: not as root but as the
    user that owns token and store (daemon here, keel there), with CAP_SETUID
    and CAP_SETGID only, as ambient capabilities. The network process
    switches to privsep.user, and neither process keeps any capability."""
    conf = 'user = "daemon";\nprivsep: { user = "nobody"; };\nnetwork_threads = 2;'

    def prepare(self):
        pw = pwd.getpwnam("daemon")
        for root, dirs, files in os.walk(self.dir):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmp, 0o711)

    def start(self, extra=(), prefix=()):
        caps = "+setuid,+setgid"
        return super().start(extra, ["setpriv", "--reuid=daemon", "--regid=daemon",
                                     "--clear-groups", "--inh-caps=" + caps,
                                     "--ambient-caps=" + caps, "--"])

    def test_capabilities_only_to_switch(self):
        key, net = self.k.proc.pid, children(self.k.proc.pid)[0]
        daemon, nobody = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
        self.assertEqual(proc_status(key)["Uid"].split(), [str(daemon.pw_uid)] * 4)
        self.assertEqual(proc_status(net)["Uid"].split(), [str(nobody.pw_uid)] * 4)
        self.assertEqual(proc_status(net)["Groups"].split(), [str(nobody.pw_gid)])
        # Capabilities and credentials belong to each thread: the network
        # loops' threads too (network_threads = 2 above), started once the
        # process had dropped them. A sanitizer's own thread keeps them (see
        # keeld.c, become): there only the processes' first threads are checked.
        sanitized = self.k.wait_line(self.k.err, r"seccomp: (off|\d+ system calls)").group(1) == "off"
        for pid in (key, net):
            tids = [str(pid)] if sanitized else os.listdir("/proc/%d/task" % pid)
            for tid in tids:
                st = proc_status(int(tid))
                for field in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                    self.assertEqual(int(st[field], 16), 0, (pid, tid, field))
        if not sanitized:
            self.assertEqual(len(os.listdir("/proc/%d/task" % net)), 2)
            for tid in os.listdir("/proc/%d/task" % net):
                self.assertEqual(proc_status(int(tid))["Uid"].split(), [str(nobody.pw_uid)] * 4)
        self.serve_a_key()


def use_crl_file(d, locate):
    """Makes keeld.conf in appliance directory |d| name a CRL file of the dev
    CA (listing nobody yet) as tls.crl_file; returns its path."""
    crl = os.path.join(d, "clients.crl")
    write_crl(crl, (), locate)
    path = os.path.join(d, "keeld.conf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('private_key = "certs/server.key";',
                             'private_key = "certs/server.key"; crl_file = "clients.crl";'))
    return crl


class PrivsepCrlTest(HardenCase):
    """tls.crl_file: the key process reads the CRLs and sends them with the
    TLS identity to the network process, which reads no file; a SIGHUP sends
    the file again, and a client it now lists is refused."""
    conf = "# tls.crl_file: prepare()"

    def locate(self, name):
        return os.path.join(self.dir, "secrets" if name.endswith(".key") else "certs", name)

    def prepare(self):
        self.crl = use_crl_file(self.dir, self.locate)

    def test_revoked_client_refused_after_sighup(self):
        self.k.wait_line(self.k.err, r"tls: 1 CRL from ")
        with self.conn() as c:
            self.call1(c, OP_CREATE, create_aes())
        write_crl(self.crl, ["client"], self.locate)
        mark = self.k.mark()
        os.kill(self.k.proc.pid, signal.SIGHUP)
        self.k.wait_line(self.k.err, r"reloaded certificates and client registrations", mark)
        try:
            with self.conn() as c:
                c.call(request([op(OP_CREATE, create_aes())]))
            self.fail("a revoked client was served")
        except (ssl.SSLError, ConnectionError, EOFError, OSError):
            pass
        self.k.wait_line(self.k.err, r"client certificate \S+ is revoked "
                                     r"\(tls\.crl_file\)", mark)


def tls_key_needles(path, label):
    """What of the private key in PEM file |path| must not lie in memory: its
    DER, as PKCS#8 and in the traditional form (PKCS#1 for RSA, SEC 1 for
    EC), less the first 16 bytes (glibc's free writes its list pointers
    there, so a copy freed unwiped starts differently); its private numbers
    big-endian, as any encoding has them (OpenSSL computes with them in
    little-endian words, so the key in use is not found); and the base64
    lines of either form as PEM."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    with open(path, "rb") as f:
        key = ser.load_pem_private_key(f.read(), None)
    needles = {}
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        secrets = {"d": numbers.d, "p": numbers.p, "q": numbers.q}
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        secrets = {"scalar": key.private_numbers().private_value}
    for name, value in secrets.items():
        needles["%s %s" % (label, name)] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    for form in (ser.PrivateFormat.PKCS8, ser.PrivateFormat.TraditionalOpenSSL):
        der = key.private_bytes(ser.Encoding.DER, form, ser.NoEncryption())
        needles["%s %s DER" % (label, form.name)] = der[16:]
        pem = key.private_bytes(ser.Encoding.PEM, form, ser.NoEncryption())
        for i, line in enumerate(pem.splitlines()):
            if not line.startswith(b"-----") and len(line) >= 16:  # not the short last line
                needles["%s %s PEM line %d" % (label, form.name, i)] = line
    return needles


@unittest.skipUnless(os.geteuid() == 0, "needs root, to read the memory of both processes")
class PrivsepTlsKeyTest(HardenCase):
    """The server's TLS private key reaches the network process as PKCS#8 DER
    in a part of PS_SETUP of its own and is parsed from there: neither process
    keeps a copy of its DER or PEM text (read, sent, parsed: every buffer
    wiped) after start-up, a SIGHUP or a server certificate renewed through
    the admin API, each with tls.crl_file set (the CRLs travel beside the key)."""
    conf = "# tls.crl_file: prepare()"

    def prepare(self):
        use_crl_file(self.dir, lambda name: os.path.join(
            self.dir, "secrets" if name.endswith(".key") else "certs", name))

    def key_file(self):
        return os.path.join(self.dir, "certs/server.key")

    def ca_key(self):
        return tls_key_needles(os.path.join(self.dir, "secrets/ca.key"), "CA")

    def assert_nowhere(self, needles):
        """Neither process holds any of |needles|, locked pages included."""
        net = children(self.k.proc.pid)
        self.assertEqual(len(net), 1, net)
        found = []
        for name, pid in (("key process", self.k.proc.pid), ("network process", net[0])):
            snapshot = memory_snapshot(pid)
            for what, needle in needles.items():
                found += ["%s: %s at %#x" % (name, what, at)
                          for at, _ in snapshot_hits(snapshot, needle)]
        self.assertEqual(found, [], "\n".join(found))

    def reloaded(self, mark):
        """Both processes are done with a new setup: the key process sent it
        (and wiped its buffers), the network process loaded it."""
        self.k.wait_line(self.k.err, r"privsep: setup \d+ sent", mark)
        self.k.wait_line(self.k.err, r"reloaded certificates and client registrations", mark)

    def test_tls_key_in_neither_process(self):
        old = tls_key_needles(self.key_file(), "old")
        self.serve_a_key()  # a handshake with the key
        with self.subTest("after start-up and a handshake"):
            self.assert_nowhere(old)
        mark = self.k.mark()
        os.kill(self.k.proc.pid, signal.SIGHUP)
        self.reloaded(mark)
        self.serve_a_key()
        with self.subTest("after a SIGHUP"):
            self.assert_nowhere(old)
        # An administrator's change that pushes a setup, with a key made,
        # written and read again by the key process.
        mark = self.k.mark()
        r = subprocess.run([KEELCTL, "server-cert", "renew", "--san", "DNS:kms.example",
                            "--config", os.path.join(self.dir, "keeld.conf")],
                           capture_output=True, timeout=GUARD)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.reloaded(mark)
        new = tls_key_needles(self.key_file(), "new")
        self.assertNotEqual(sorted(new.values()), sorted(old.values()))
        self.serve_a_key()
        with self.subTest("after a server certificate renewal"):
            # The CA's key signed the new certificate in the key process.
            self.assert_nowhere({**old, **new, **self.ca_key()})


class PrivsepTlsKeyFirstStartTest(PrivsepTlsKeyTest):
    """The same search on keeld --dev's first start, which makes the CA and
    the server's key before the fork, so the network process begins with a
    copy of that process's heap (the CA's key is searched for too)."""
    conf = ""

    def test_tls_key_in_neither_process(self):
        self.serve_a_key()
        self.assert_nowhere({**tls_key_needles(self.key_file(), "made"), **self.ca_key()})


if __name__ == "__main__":
    unittest.main()
