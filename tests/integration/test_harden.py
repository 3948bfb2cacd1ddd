#!/usr/bin/python3
"""Hardening tests of keeld (issue 8): engine limits with a client that
exceeds them while another stays served, secrets that must not linger in
keeld's memory, and faults (storage, crash consistency).

keeld runs as `keeld --dev DIR` (test_dev's Keeld fixture); a test that needs
other settings starts it once to make DIR, then appends to DIR/keeld.conf
(which --dev never rewrites) and starts it again.

Synchronisation is on events only: READY lines, log lines, exits. GUARD
timeouts only fail a stuck test.

Run one test:  test_harden.py EngineLimitsTest.test_max_batch_items
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import hashlib
import json
import os
import pwd
import random
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import unittest

from kmipwire import (CRYPTOGRAPHIC_ALGORITHM, CRYPTOGRAPHIC_FAILURE, CRYPTOGRAPHIC_LENGTH,
                      GENERAL_FAILURE,
                      INVALID_MESSAGE, KEY_BLOCK,
                      KEY_FORMAT_TYPE, KEY_MATERIAL, KEY_VALUE, MAXIMUM_ITEMS, OBJECT_TYPE,
                      OP_ACTIVATE, OP_ADD_ATTRIBUTE, OP_CREATE, OP_DESTROY, OP_DISCOVER_VERSIONS,
                      OP_GET, OP_GET_ATTRIBUTES, OP_LOCATE, OP_REGISTER, TEXT,
                      OPERATION_FAILED, SUCCESS, SYMMETRIC_KEY, TEMPLATE_ATTRIBUTE,
                      UNIQUE_IDENTIFIER, B, E, I, S, T, attribute, attributes, create_aes, key_bytes,
                      op, request)
from test_dev import GUARD, KEELCTL, Keeld
from test_kmip import KeeldCase


class HardenCase(KeeldCase):
    """test_kmip's KeeldCase, with |conf| appended to keeld.conf after a first
    start has made the appliance directory."""

    conf = ""

    def prepare(self):
        """Runs once the appliance directory is made and |conf| appended."""

    def start(self, extra=(), prefix=()):
        path = os.path.join(self.dir, "keeld.conf")
        if self.conf and not os.path.exists(path):
            first = Keeld(self.dir)
            self.procs.append(first)
            self.assertEqual(first.ready().stop(), 0)
            with open(path, "a") as f:
                f.write(self.conf + "\n")
            self.prepare()
        k = Keeld(self.dir, extra, prefix)
        self.procs.append(k)
        return k.ready()

    def serve_a_key(self):
        """Create, Activate and Get of a key: token, store and engine at work."""
        with self.conn() as c:
            uid = self.call1(c, OP_CREATE, create_aes()).payload.find(UNIQUE_IDENTIFIER)
            self.call1(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, uid)])
            got = self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload
            self.assertEqual(len(key_bytes(got)), 32)


class EngineLimitsTest(HardenCase):
    conf = "limits: { max_batch_items = 4; max_locate_items = 3; };"

    def test_max_batch_items(self):
        with self.conn() as c, self.conn() as other:
            mark = self.k.mark()
            items = c.call(request([op(OP_DISCOVER_VERSIONS, [])] * 5)).items()
            # Refused whole: one failed item, none of the five run.
            self.assertEqual([(it.status, it.reason) for it in items],
                             [(OPERATION_FAILED, INVALID_MESSAGE)], items)
            self.k.wait_line(self.k.err, r"5 batch items, over the limit of 4", mark)
            self.call1(other, OP_DISCOVER_VERSIONS, [])
            items = c.call(request([op(OP_DISCOVER_VERSIONS, [])] * 4)).items()
            self.assertEqual([it.status for it in items], [SUCCESS] * 4)

    def test_max_locate_items(self):
        with self.conn() as c, self.conn() as other:
            for _ in range(5):
                self.call1(c, OP_CREATE, create_aes())

            def located(payload):
                it = self.call1(c, OP_LOCATE, payload)
                return it.payload.all(UNIQUE_IDENTIFIER)

            self.assertEqual(len(located([])), 3)  # five match, the ceiling is three
            self.assertEqual(len(located([I(MAXIMUM_ITEMS, 10)])), 3)  # asking more changes nothing
            self.assertEqual(len(located([I(MAXIMUM_ITEMS, 2)])), 2)  # asking fewer does
            self.call1(other, OP_DISCOVER_VERSIONS, [])


# -- secrets ------------------------------------------------------------------------------------

def memory_regions(pid):
    """(start, end, locked_nodump, name) of each readable mapping of |pid|,
    from /proc/PID/smaps; locked_nodump marks libhsm's secret pages (mlock
    and MADV_DONTDUMP: VmFlags lo and dd)."""
    regions, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                start, end = (int(x, 16) for x in head[0].split("-"))
                cur = [start, end, False, head[5] if len(head) > 5 else "", "r" in head[1]]
                regions.append(cur)
            elif head[0] == "VmFlags:":
                cur[2] = "lo" in head[1:] and "dd" in head[1:]
    return [(a, b, secret, name) for a, b, secret, name, readable in regions
            if readable and name not in ("[vvar]", "[vsyscall]")]


def memory_snapshot(pid):
    """Every readable mapping of |pid|: a list of (start, bytes, in a locked
    non-dumpable page). Read once, searched for as many needles as wanted."""
    regions = memory_regions(pid)
    if any(end - start > 1 << 40 for start, end, _, _ in regions):
        raise unittest.SkipTest("a sanitizer's shadow memory (over 1 TiB mapped): "
                                "the memory scan runs in the plain build")
    snapshot = []
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, secret, _ in regions:
            try:
                mem.seek(start)
                snapshot.append((start, mem.read(end - start), secret))
            except OSError:
                continue  # e.g. a guard page
    return snapshot


def snapshot_hits(snapshot, needle):
    """Where |needle| occurs in a memory_snapshot: a list of (address, in a
    locked non-dumpable page)."""
    hits = []
    for start, data, secret in snapshot:
        at = data.find(needle)
        while at >= 0:
            hits.append((start + at, secret))
            at = data.find(needle, at + 1)
    return hits


def memory_hits(pid, needle):
    """Where |needle| occurs in |pid|'s memory: a list of (address, in a
    locked non-dumpable page)."""
    return snapshot_hits(memory_snapshot(pid), needle)


class SecretsTest(HardenCase):
    """Plaintext secrets do not linger in keeld's memory: a served key is
    nowhere once its response is out, and the HSM PIN only in its locked,
    non-dumpable page. keeld runs one worker thread so that the answer to a
    second request proves the first one's handling is over (wipes included)."""
    conf = "worker_threads = 1;"

    def pin(self):
        with open(os.path.join(self.dir, "secrets/user.pin"), "rb") as f:
            return f.read().strip()

    def test_pin_only_in_locked_memory(self):
        hits = memory_hits(self.k.proc.pid, self.pin())
        # The scan works: libhsm keeps the PIN to log in again after a token fault.
        self.assertIn(True, [secret for _, secret in hits], hits)
        self.assertEqual([hex(a) for a, secret in hits if not secret], [])

    def test_key_gone_after_get(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version):
                self.ctx.maximum_version = version
                with self.conn() as c:
                    uid = self.call1(c, OP_CREATE, create_aes()).payload.find(UNIQUE_IDENTIFIER)
                    self.call1(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, uid)])
                    key = key_bytes(self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload)
                    self.assertEqual(len(key), 32)
                    self.call1(c, OP_DISCOVER_VERSIONS, [])  # the Get is over
                    hits = memory_hits(self.k.proc.pid, key)
                self.assertEqual([hex(a) for a, _ in hits], [])

    def test_registered_key_gone(self):
        # The key arrives in the request: OpenSSL's read buffer, libevent's
        # input buffer and the request copy must all be wiped.
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version):
                self.ctx.maximum_version = version
                key = os.urandom(32)
                sym = S(SYMMETRIC_KEY, S(KEY_BLOCK, E(KEY_FORMAT_TYPE, 1),
                                         S(KEY_VALUE, B(KEY_MATERIAL, key)),
                                         E(CRYPTOGRAPHIC_ALGORITHM, 3),
                                         I(CRYPTOGRAPHIC_LENGTH, 256)))
                with self.conn() as c:
                    self.call1(c, OP_REGISTER, create_aes() + [sym])
                    self.call1(c, OP_DISCOVER_VERSIONS, [])  # the Register is over
                    hits = memory_hits(self.k.proc.pid, key)
                self.assertEqual([hex(a) for a, _ in hits], [])

    def test_no_core_dumps(self):
        with open("/proc/%d/limits" % self.k.proc.pid) as f:
            self.assertRegex(f.read(), r"(?m)^Max core file size\s+0\s+0\s")


# -- storage faults -----------------------------------------------------------------------------

def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class StoreFaultTest(HardenCase):
    """A store keeld cannot trust or write: it refuses to start and says why,
    touching nothing; a full disk fails requests cleanly and acknowledges
    nothing it did not keep."""

    def db(self):
        return os.path.join(self.dir, "data/keel.db")

    def create_keys(self, c, n):
        return [self.call1(c, OP_CREATE, create_aes()).payload.find(UNIQUE_IDENTIFIER)
                for _ in range(n)]

    def assert_refused(self, pattern, prefix=()):
        """keeld exits 5 (store) and logs |pattern|; the file is unchanged."""
        before = sha256_file(self.db())
        k = Keeld(self.dir, prefix=prefix)
        self.procs.append(k)
        self.assertEqual(k.wait_exit(), 5, k.stderr_text())
        self.assertRegex(k.stderr_text(), pattern)
        self.assertEqual(sha256_file(self.db()), before)

    def assert_keys(self, uids):
        """A fresh keeld serves exactly |uids|, and the store is sound."""
        self.k = self.start()
        with self.conn() as c:
            for uid in uids:
                self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)])
            found = self.call1(c, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER)
        self.assertEqual(sorted(f.value for f in found), sorted(uids))
        self.assertEqual(self.k.stop(), 0)
        with sqlite3.connect(self.db()) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])

    def test_corrupted_database_refused(self):
        with self.conn() as c:
            uids = self.create_keys(c, 20)
        self.assertEqual(self.k.stop(), 0)
        good = self.db() + ".good"
        shutil.copy(self.db(), good)
        with sqlite3.connect(self.db()) as db:
            page = db.execute("PRAGMA page_size").fetchone()[0]
            root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'objects'"
                              ).fetchone()[0]
        # The objects table's root page header trashed: a damaged b-tree.
        with open(self.db(), "r+b") as f:
            f.seek((root - 1) * page)
            f.write(b"\xff" * 16)
        self.assert_refused(r"keel\.db fails its integrity check")
        # Not a database at all.
        with open(self.db(), "r+b") as f:
            f.write(b"\xa5" * 100)
        self.assert_refused(r"not a database")
        shutil.copy(good, self.db())
        self.assert_keys(uids)

    def test_read_only_store_refused(self):
        with self.conn() as c:
            uids = self.create_keys(c, 3)
        self.assertEqual(self.k.stop(), 0)
        data = os.path.dirname(self.db())
        # root writes through file modes: a read-only bind mount of the data
        # directory, in a mount namespace of keeld's own.
        ro = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" "$0" && '
              'mount -o remount,bind,ro "$0" "$0" && exec "$@"', data]
        self.assert_refused(r"keel\.db is read-only", ro)
        self.assert_keys(uids)

    def test_disk_full(self):
        with self.conn() as c:
            uids = self.create_keys(c, 3)
        self.assertEqual(self.k.stop(), 0)
        # No file of keeld's may grow past 64 KiB from now: the store's WAL
        # soon cannot. keeld ignores SIGXFSZ, so writes fail with EFBIG.
        self.k = self.start(prefix=["prlimit", "--fsize=65536", "--"])
        failed = None
        with self.conn() as c, self.conn() as other:
            for _ in range(2000):
                it = c.call(request([op(OP_CREATE, create_aes())])).item(0)
                if it.status != SUCCESS:
                    failed = it
                    break
                uids.append(it.payload.find(UNIQUE_IDENTIFIER))
            self.assertIsNotNone(failed, "64 KiB never ran out")
            self.assertEqual(failed.status, OPERATION_FAILED, failed)
            self.assertEqual(failed.reason, GENERAL_FAILURE, failed)
            self.k.wait_line(self.k.err, r"store: COMMIT: disk I/O error")
            # Every request writes its audit rows in one transaction, so one
            # succeeds now only if they still fit: either way each is answered
            # (not dropped, not hung), here and for another client.
            for conn, operation, payload in ((c, OP_GET, [T(UNIQUE_IDENTIFIER, uids[0])]),
                                             (c, OP_DISCOVER_VERSIONS, []),
                                             (other, OP_DISCOVER_VERSIONS, [])):
                it = conn.call(request([op(operation, payload)])).item(0)
                self.assertIn((it.status, it.reason), [(SUCCESS, None),
                                                       (OPERATION_FAILED, GENERAL_FAILURE)])
        self.k.kill()
        self.assert_keys(uids)  # every acknowledged Create, and nothing else


# -- HSM outage ---------------------------------------------------------------------------------

class Loader(threading.Thread):
    """A client asking Get (needs the token) and Locate (does not) in a loop
    until told to stop; counts each answer under the phase it came in."""

    def __init__(self, conn, uid, cv, phase):
        super().__init__(daemon=True)
        self.conn, self.uid, self.cv, self.phase = conn, uid, cv, phase
        self.counts, self.other, self.error, self.stop = {}, [], None, False

    def count(self, key):
        with self.cv:
            k = (self.phase[0],) + key
            self.counts[k] = self.counts.get(k, 0) + 1
            self.cv.notify_all()

    def run(self):
        try:
            while not self.stop:
                get = self.conn.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, self.uid)])]))
                it = get.item(0)
                self.count(("get", it.status, it.reason))
                it = self.conn.call(request([op(OP_LOCATE, [])])).item(0)
                self.count(("locate", it.status, it.reason))
        except Exception as e:  # noqa: B902 (reported by the test)
            self.error = e
        finally:
            with self.cv:
                self.cv.notify_all()


class LoadedCase(HardenCase):
    """Three Loader clients on one active key, whose answers a test counts
    phase by phase while it breaks and mends the token."""

    OK, CRYPTO_FAILED = (SUCCESS, None), (OPERATION_FAILED, CRYPTOGRAPHIC_FAILURE)

    def start_loaders(self):
        with self.conn() as c:
            self.uid = self.call1(c, OP_CREATE, create_aes()).payload.find(UNIQUE_IDENTIFIER)
            self.call1(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, self.uid)])
        self.cv, self.phase = threading.Condition(), ["up"]
        self.loaders = [Loader(self.conn(), self.uid, self.cv, self.phase) for _ in range(3)]
        for l in self.loaders:
            l.start()

    def set_phase(self, name):
        with self.cv:
            self.phase[0] = name

    def each_saw(self, ph, what, status, n=3):
        """Waits until every loader had |n| answers |status| to |what| in |ph|."""
        with self.cv:
            self.assertTrue(self.cv.wait_for(lambda: all(
                l.counts.get((ph, what) + status, 0) >= n or l.error for l in self.loaders),
                GUARD), (ph, what, status))
        for l in self.loaders:
            self.assertIsNone(l.error)

    def stop_loaders(self):
        """Stops them; asserts that Gets got only success or Cryptographic
        Failure and Locates only success. Returns the Gets that failed, by phase."""
        for l in self.loaders:
            l.stop = True
        for l in self.loaders:
            l.join(GUARD)
            l.conn.close()
        failed = {}
        for l in self.loaders:
            self.assertIsNone(l.error)
            for (ph, what, *status), n in l.counts.items():
                self.assertIn(tuple(status), (self.OK, self.CRYPTO_FAILED) if what == "get"
                              else (self.OK,), (ph, what, status, n))
                if what == "get" and tuple(status) == self.CRYPTO_FAILED:
                    failed[ph] = failed.get(ph, 0) + n
        return failed


class HsmOutageTest(LoadedCase):
    """The token's directory vanishes under load (SoftHSM2 keeps a token as
    files): requests that need the key fail at once with a KMIP error, the
    rest keep answering, and keeld serves keys again by itself once the
    directory is back (recovery retries back off to at most 2 s)."""

    def test_token_vanishes_under_load_and_returns(self):
        tokens = os.path.join(self.dir, "softhsm/tokens")
        self.start_loaders()
        try:
            self.each_saw("up", "get", self.OK)
            self.set_phase("gone")
            os.rename(tokens, tokens + ".gone")
            try:
                self.each_saw("gone", "get", self.CRYPTO_FAILED)
                self.each_saw("gone", "locate", self.OK)  # what needs no token carries on
            finally:
                self.set_phase("back")
                os.rename(tokens + ".gone", tokens)
                back = time.monotonic()
            self.each_saw("back", "get", self.OK)
            resumed = time.monotonic() - back
        finally:
            failed = self.stop_loaders()
        print("HsmOutageTest: %d Gets failed while the token was gone; served again %.2f s "
              "after its return" % (failed.get("gone", 0), resumed), file=sys.stderr)
        self.assertLess(resumed, 15)
        self.k.wait_line(self.k.err, r"hsm: token recovered")

FAULTY_MODULE = os.environ.get("KEEL_FAULTY_MODULE")


@unittest.skipUnless(FAULTY_MODULE, "KEEL_FAULTY_MODULE not set")
class HsmHangTest(LoadedCase):
    """An HSM that hangs instead of failing (the test PKCS#11 module over
    SoftHSM2, told to block every token call): each Get is answered with
    Cryptographic Failure and says why (the first after hsm.timeout_ms, the
    next at once while that call hangs), Locate keeps answering, and once
    the token answers again Gets succeed by themselves."""
    conf = "# hsm.timeout_ms: set by prepare"

    def prepare(self):
        self.control = os.path.join(self.tmp, "fault")
        os.environ["KEEL_FAULTY_CONTROL"] = self.control  # keeld's, from the next start
        path = os.path.join(self.dir, "keeld.conf")
        with open(path) as f:
            text = f.read()
        self.assertIn('module = "softhsm2";', text)
        with open(path, "w") as f:
            f.write(text.replace('module = "softhsm2";',
                                 'module = "%s"; timeout_ms = 500;' % FAULTY_MODULE))

    def tearDown(self):
        os.environ.pop("KEEL_FAULTY_CONTROL", None)
        super().tearDown()

    def test_hung_token_fails_fast_others_served(self):
        self.start_loaders()
        try:
            self.each_saw("up", "get", self.OK, 2)
            self.set_phase("hung")
            with open(self.control, "w") as f:
                f.write("hang")
            try:
                self.each_saw("hung", "get", self.CRYPTO_FAILED, 2)
                self.each_saw("hung", "locate", self.OK, 2)  # what needs no token carries on
                with self.conn() as c:
                    started = time.monotonic()
                    it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, self.uid)])])).item(0)
                    waited = time.monotonic() - started
                self.assertEqual((it.status, it.reason), self.CRYPTO_FAILED, it)
                self.assertEqual(it.message, "the HSM did not answer in time")
                self.k.wait_line(self.k.err, r"hsm: the token did not answer within 500 ms")
            finally:
                self.set_phase("back")
                os.remove(self.control)
            self.each_saw("back", "get", self.OK, 2)
        finally:
            failed = self.stop_loaders()
        print("HsmHangTest: %d Gets refused while the token hung; one answered after %.2f s "
              "(hsm.timeout_ms 500)" % (failed.get("hung", 0), waited), file=sys.stderr)

# -- privileges ---------------------------------------------------------------------------------

def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@unittest.skipUnless(os.geteuid() == 0, "needs root, to start keeld as root")
class PrivilegeDropTest(HardenCase):
    """Started as root with user = "nobody", keeld (its key process) serves
    as nobody, for good: every uid and gid nobody's, no capabilities, no new
    privileges. Its network process runs as another user (privsep.user)."""
    conf = 'user = "nobody";\nprivsep: { user = "daemon"; };'

    def prepare(self):
        # As in a real deployment, the token's files and the store's directory
        # are the user's (a token recovery, SoftHSM's checks for changed
        # object files and SQLite's checkpoints open them after the drop).
        pw = pwd.getpwnam("nobody")
        for sub in ("softhsm", "data"):
            for root, dirs, files in os.walk(os.path.join(self.dir, sub)):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.chown(name, pw.pw_uid, pw.pw_gid)
        for d in (self.tmp, self.dir):
            os.chmod(d, 0o711)  # nobody may pass through to them

    def test_runs_as_user_after_binding(self):
        pw = pwd.getpwnam("nobody")
        st = proc_status(self.k.proc.pid)
        self.assertEqual(st["Uid"].split(), [str(pw.pw_uid)] * 4)
        self.assertEqual(st["Gid"].split(), [str(pw.pw_gid)] * 4)
        self.assertEqual(st["Groups"].split(), [str(pw.pw_gid)])
        self.assertEqual(int(st["CapEff"], 16), 0)
        self.assertEqual(int(st["CapPrm"], 16), 0)
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        # stderr is read by another thread than READY on stdout: wait for the line.
        self.k.wait_line(self.k.err, r"running as user nobody")
        # Token and store were opened as root and serve on.
        self.serve_a_key()

    def test_unknown_user_refused(self):
        self.assertEqual(self.k.stop(), 0)
        conf = os.path.join(self.dir, "keeld.conf")
        with open(conf) as f:
            text = f.read().replace('user = "nobody";', 'user = "no-such-user-keel";')
        with open(conf, "w") as f:
            f.write(text)
        k = Keeld(self.dir)
        self.procs.append(k)
        self.assertEqual(k.wait_exit(), 1)
        self.assertIn("user no-such-user-keel: no such user", k.stderr_text())


# -- seccomp ------------------------------------------------------------------------------------

SANDBOX_C = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "../../appliance/sandbox/sandbox.c")
UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "../../appliance/systemd/keeld.service")


def systemd_filter_set(expr):
    """The system calls of a systemd syscall group or name (systemd-analyze)."""
    if not expr.startswith("@"):
        return {expr}
    r = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", expr],
                       capture_output=True, text=True, timeout=GUARD, check=True)
    out = set()
    for line in r.stdout.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            out |= systemd_filter_set(word)
    return out


class SandboxTest(HardenCase):
    """keeld installs its seccomp allow-list once started, on every thread,
    and serves under it (the whole integration suite runs under it too: it
    is on by default). That a call off the list kills is test_sandbox's."""

    def test_every_thread_filtered_and_serving(self):
        line = self.k.wait_line(self.k.err, r"seccomp: (off|\d+ system calls allowed, any other "
                                            r"kills the process)")
        if line.group(1) == "off":
            self.skipTest("seccomp is off in sanitizer builds (docs/hardening.md)")
        with self.conn() as c:
            uid = self.call1(c, OP_CREATE, create_aes()).payload.find(UNIQUE_IDENTIFIER)
            self.call1(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, uid)])
            mark = self.k.mark()
            self.k.proc.send_signal(signal.SIGHUP)  # re-reads files under the filter
            self.k.wait_line(self.k.err, r"reloaded certificates", mark)
            self.assertEqual(len(key_bytes(self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)])
                                           .payload)), 32)
        tasks = os.listdir("/proc/%d/task" % self.k.proc.pid)
        self.assertGreater(len(tasks), 2)  # the loop, workers, the admin API
        for tid in tasks:
            st = proc_status(int(tid))
            self.assertEqual(st["Seccomp"].strip(), "2", tid)  # SECCOMP_MODE_FILTER
            self.assertEqual(st["NoNewPrivs"].strip(), "1", tid)

    def test_systemd_unit_allows_the_list(self):
        """keeld.service's SystemCallFilter= (applied from exec, so it allows
        start-up too) lets through every call of keeld's own list."""
        if shutil.which("systemd-analyze") is None:
            self.skipTest("no systemd-analyze")
        with open(SANDBOX_C) as f:
            listed = set(re.findall(r"SCMP_SYS\((\w+)\)", f.read()))
        # Installing the list takes these too (the appliance's keeld failed
        # at every start when the unit refused seccomp), and so does the
        # network process's switch to keel-net, then both dropping
        # capabilities (docs/hardening.md, "On the appliance").
        listed |= {"seccomp", "prctl", "setgroups", "setgid", "setuid", "capget", "capset"}
        # An allow list, then assignments in order: "~" words remove from it,
        # the others add (systemd.exec(5)).
        allowed = set()
        with open(UNIT) as f:
            for line in f:
                if line.startswith("SystemCallFilter="):
                    for word in line.split("=", 1)[1].split():
                        if word.startswith("~"):
                            allowed -= systemd_filter_set(word[1:])
                        else:
                            allowed |= systemd_filter_set(word)
        self.assertGreater(len(listed), 50)
        self.assertEqual(sorted(listed - allowed), [])


# -- crash consistency --------------------------------------------------------------------------

OP_REVOKE = 0x13
REVOCATION_REASON, REVOCATION_REASON_CODE = 0x420081, 0x420082
CESSATION_OF_OPERATION = 6
# An object's life in the workload: each step acknowledged moves it one on.
STEPS = ("create", "activate", "add attribute", "revoke", "destroy")
# (State, has the added attribute) an object shows after n steps (KMIP 1.4 §3.22).
SHOWN = {1: (1, False), 2: (2, False), 3: (2, True), 4: (3, True), 5: (5, True)}
KILLS = int(os.environ.get("KEEL_CRASH_KILLS", "50"))


class Workload(threading.Thread):
    """One client driving objects through STEPS, each new object by Create
    or Register in turn, until keeld dies under it. |acked| counts the
    answers; |inflight| is the (uid or None for a new object, step) asked
    but not answered when the connection broke."""

    def __init__(self, conn, steps, cv, keys):
        super().__init__(daemon=True)
        self.conn, self.steps, self.cv, self.keys = conn, steps, cv, keys
        self.acked, self.inflight, self.error, self.material = 0, None, None, None

    def payload(self, uid, step):
        u = [T(UNIQUE_IDENTIFIER, uid)] if uid else []
        if step == 0:
            if len(self.steps) % 2 == 0:
                return OP_CREATE, create_aes()
            self.material = os.urandom(32)
            sym = S(SYMMETRIC_KEY, S(KEY_BLOCK, E(KEY_FORMAT_TYPE, 1),
                                     S(KEY_VALUE, B(KEY_MATERIAL, self.material)),
                                     E(CRYPTOGRAPHIC_ALGORITHM, 3), I(CRYPTOGRAPHIC_LENGTH, 256)))
            return OP_REGISTER, create_aes() + [sym]
        return [None, (OP_ACTIVATE, u),
                (OP_ADD_ATTRIBUTE, u + [attribute("x-crash", TEXT, uid)]),
                (OP_REVOKE, u + [S(REVOCATION_REASON, E(REVOCATION_REASON_CODE,
                                                        CESSATION_OF_OPERATION))]),
                (OP_DESTROY, u)][step]

    def run(self):
        uid = None
        try:
            while True:
                step = self.steps.get(uid, 0) if uid else 0
                if step == len(STEPS):
                    uid, step = None, 0
                self.inflight = (uid, step)
                operation, payload = self.payload(uid, step)
                self.conn.send(request([op(operation, payload)]))
                resp = self.conn.recv()
                if resp is None:
                    return
                it = resp.item(0)
                if it.status != SUCCESS:
                    self.error = it
                    return
                uid = uid or it.payload.find(UNIQUE_IDENTIFIER)
                with self.cv:
                    if step == 0 and operation == OP_REGISTER:
                        self.keys[uid] = self.material
                    self.steps[uid] = step + 1
                    self.inflight = None
                    self.acked += 1
                    self.cv.notify_all()
        except OSError:
            pass  # keeld was killed under us
        finally:
            with self.cv:
                self.cv.notify_all()


class CrashTest(HardenCase):
    """SIGKILL at random moments of a mixed workload, KILLS times (50 by
    default; KEEL_CRASH_KILLS for a longer run), with a CRK rotation started
    under it every ten kills and paced so that kills land while it runs:
    after each restart every acknowledged step is there, the one in flight
    either wholly or not at all, the store passes PRAGMA integrity_check and
    the audit chain holds, every key not destroyed has the bytes it had (or
    was registered with), and an unfinished rotation carries on."""
    conf = "crk: { rotation_batch = 2; rotation_pause_ms = 20; };"

    def shown(self, c, uids):
        """{uid: number of steps its attributes show}."""
        out = {}
        for i in range(0, len(uids), 64):
            chunk = uids[i:i + 64]
            items = c.call(request([op(OP_GET_ATTRIBUTES, [T(UNIQUE_IDENTIFIER, u)])
                                    for u in chunk])).items()
            for u, it in zip(chunk, items):
                self.assertEqual(it.status, SUCCESS, (u, it))
                a = attributes(it.payload)
                got = (a["State"][0], "x-crash" in a)
                out[u] = [n for n, shown in SHOWN.items() if shown == got][0]
        return out

    def check(self, steps, inflight, c):
        """Compares what keeld shows with what was acknowledged; adopts an
        in-flight step that took effect."""
        # Locate finds what is not destroyed (KMIP 1.4 §4.9).
        uids = [u.value for u in self.call1(c, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER)]
        unknown = set(uids) - set(steps)
        if inflight is not None and inflight[0] is None:
            # A Create or Register in flight: done wholly (its first step) or not.
            self.assertLessEqual(len(unknown), 1, unknown)
            for u in unknown:
                self.assertEqual(self.shown(c, [u]), {u: 1})
                steps[u] = 1
                self.took_effect += 1
        else:
            self.assertEqual(unknown, set())
        for u, n in self.shown(c, list(steps)).items():
            if inflight is not None and inflight[0] == u and n == inflight[1] + 1:
                steps[u] = n  # the step in flight took effect, wholly
                self.took_effect += 1
            self.assertEqual(n, steps[u], (u, STEPS[n - 1], "acknowledged", STEPS[steps[u] - 1]))
        self.assertEqual(sorted(uids), sorted(u for u, n in steps.items() if n < len(STEPS)))

    def integrity(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "data/keel.db"),
                             uri=True)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        finally:
            db.close()

    def audit_intact(self):
        """keelctl audit verify: every audit record's hash chain holds."""
        r = subprocess.run([KEELCTL, "audit", "verify", "--config",
                            os.path.join(self.dir, "keeld.conf")],
                           capture_output=True, timeout=GUARD, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        self.assertIn(b"intact", r.stdout)

    def keys_unchanged(self, c, steps, keys):
        """Every object not destroyed serves the bytes it was registered with,
        or (created) those it served the first time it was read."""
        live = [u for u, n in steps.items() if n < len(STEPS)]
        for i in range(0, len(live), 32):
            chunk = live[i:i + 32]
            items = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, u)]) for u in chunk])).items()
            for u, it in zip(chunk, items):
                self.assertEqual(it.status, SUCCESS, (u, it))
                self.assertEqual(key_bytes(it.payload), keys.setdefault(u, key_bytes(it.payload)),
                                 u)

    def crk(self, *args):
        """keelctl crk ARGS over the admin socket: (exit status, stdout)."""
        r = subprocess.run([KEELCTL, "crk", *args, "--config",
                            os.path.join(self.dir, "keeld.conf")],
                           capture_output=True, timeout=GUARD, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode()

    def rotate(self):
        """Starts a rotation; returns the version it rotates to, or None when
        one is still running (EX_CANTCREAT)."""
        rc, out = self.crk("rotate")
        self.assertIn(rc, (0, 73), out)
        return int(re.search(r"CRK version (\d+) is active", out).group(1)) if rc == 0 else None

    def rotation_state(self):
        rc, out = self.crk("status", "--json")
        self.assertEqual(rc, 0, out)
        return json.loads(out)["rotation"]

    def test_sigkill_during_mixed_workload(self):
        seed = int(os.environ.get("KEEL_CRASH_SEED", random.randrange(1 << 30)))
        print("CrashTest seed %d (KEEL_CRASH_SEED), %d kills" % (seed, KILLS), file=sys.stderr)
        rng = random.Random(seed)
        steps, keys, cv, total, self.took_effect = {}, {}, threading.Condition(), 0, 0
        rotations, resumed = [], 0
        for kill in range(KILLS):
            w = Workload(self.conn(), steps, cv, keys)
            w.start()
            want = rng.randint(1, 12)  # answers before the kill: a random moment
            if kill % 10 == 5:  # a rotation started under the workload
                with cv:
                    self.assertTrue(cv.wait_for(lambda: w.acked >= 1 or not w.is_alive(), GUARD))
                version = self.rotate()
                if version is not None:
                    rotations.append(version)
            with cv:
                self.assertTrue(cv.wait_for(lambda: w.acked >= want or not w.is_alive(), GUARD))
            self.assertIsNone(w.error, "kill %d: %s" % (kill, w.error))
            self.k.kill()
            w.join(GUARD)
            w.conn.close()
            total += w.acked
            self.k = self.start()
            self.integrity()
            self.audit_intact()
            # Nobody started a rotation in this process: running, it resumed.
            resumed += self.rotation_state()["state"] == "running"
            with self.conn() as c:
                self.check(steps, w.inflight, c)
                self.keys_unchanged(c, steps, keys)
        self.assertTrue(rotations, "no rotation started")
        if self.rotation_state()["state"] != "complete":  # then it completes in this process
            self.k.wait_line(self.k.err, r"crk: rotation to version %d complete" % rotations[-1])
        self.assertEqual(self.rotation_state()["state"], "complete")
        with self.conn() as c:
            self.keys_unchanged(c, steps, keys)
        print("CrashTest: %d kills, %d acknowledged operations, %d objects, %d unanswered "
              "operations found done after the restart; rotations to CRK versions %s, "
              "resumed after %d kills" % (KILLS, total, len(steps), self.took_effect,
                                          rotations, resumed), file=sys.stderr)
        self.assertGreaterEqual(total, KILLS)
        self.assertGreater(resumed, 0)  # kills landed during a rotation

if __name__ == "__main__":
    unittest.main()
