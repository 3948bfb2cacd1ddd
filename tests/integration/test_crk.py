#!/usr/bin/python3
"""CRK rotation and backups against keeld --dev: real SoftHSM2 token, real
SQLite store, KMIP over mutual TLS (issue 5).

Rotation (`keelctl crk rotate`): 10,000 KMIP-created keys are rewrapped under
CRK version 2 while a client keeps doing Create, Get, Re-key and Destroy;
keeld is killed with SIGKILL half-way and the restarted keeld resumes and
completes the rotation. No KMIP request fails, every key keeps its bytes,
destroyed keys stay destroyed, every object ends under version 2 and version 1
leaves the token.

Backup (`keelctl backup create|verify|restore`): a backup of one appliance
restored into a fresh store with the same token serves every key with
identical bytes and attributes; a backup with one byte flipped is refused and
changes nothing; rotating the restored keys retires the version the backup needs.

Synchronisation is on keeld's log lines only (its debug progress lines and
its "complete" line); timeouts are guards.

Run one test:  test_crk.py RotationTest.test_10000_keys_under_load_and_kill9
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import threading
import unittest

from kmipwire import (ITEM_NOT_FOUND, OP_ACTIVATE, OP_ADD_ATTRIBUTE, OP_CREATE,
                      OP_DESTROY, OP_GET, OP_GET_ATTRIBUTES, SUCCESS, TEXT, UNIQUE_IDENTIFIER,
                      KmipConn, T, attribute, attributes, create_aes, key_bytes, op, request)
from test_admin import UnixHTTPConnection, answer
from test_dev import GUARD, KEELCTL, crk_list
from test_kmip import KeeldCase

OP_RE_KEY = 0x04
# 10,000 keys; sanitizer builds, several times slower, rotate fewer (CTest sets it).
N = int(os.environ.get("KEEL_CRK_KEYS", "10000"))
BATCH = 50
PROGRESS = r"crk: rotation to version 2: (\d+) of (\d+) objects"


def batched(c, operation, payloads, size=BATCH, k=None):
    out = []
    for i in range(0, len(payloads), size):
        items = c.call(request([op(operation, p) for p in payloads[i:i + size]])).items()
        bad = [it for it in items if it.status != SUCCESS]
        if bad:
            raise AssertionError("failed items: %s\nkeeld's errors:\n%s" % (
                bad[:3], "\n".join(l for l in (k.err if k else []) if l and ": error:" in l)))
        out += [it.payload for it in items]
    return out


def get_keys(c, uids):
    return [key_bytes(p) for p in batched(c, OP_GET, [[T(UNIQUE_IDENTIFIER, u)] for u in uids])]


def versions_in_store(d):
    db = sqlite3.connect(os.path.join(d, "data/keel.db"))
    try:
        return dict(db.execute("SELECT crk_version, COUNT(*) FROM objects"
                               " WHERE blob IS NOT NULL GROUP BY crk_version"))
    finally:
        db.close()


def keelctl(d, *args, expect=0):
    """keelctl ARGS --config DIR/keeld.conf (the admin socket); returns stdout."""
    r = subprocess.run([KEELCTL, *args, "--config", os.path.join(d, "keeld.conf")],
                       capture_output=True, timeout=GUARD * 2)
    if r.returncode != expect:
        raise AssertionError("keelctl %s: exit %d, expected %d: %s" % (
            " ".join(args), r.returncode, expect, r.stderr.decode()))
    return r.stdout.decode() + r.stderr.decode()


def remaining_metric(d):
    """keel_crk_rotation_remaining from /metrics on the admin socket."""
    c = UnixHTTPConnection(os.path.join(d, "admin.sock"))
    try:
        status, text = answer(c, "GET", "/metrics")
    finally:
        c.close()
    assert status == 200, status
    return int(re.search(r"(?m)^keel_crk_rotation_remaining (\d+)$", text).group(1))


class Load(threading.Thread):
    """A KMIP client working while the rotation runs: each round creates and
    gets a key, gets an original key, and alternately re-keys or destroys one.
    Every response item must succeed; failures are counted, not raised."""

    def __init__(self, port, ctx, originals, known):
        super().__init__(daemon=True)
        self.port, self.ctx = port, ctx
        self.originals, self.known = originals, known  # uid -> bytes, shared
        self.stop_ev = threading.Event()
        self.failures, self.rounds, self.destroyed = [], 0, []
        self.rng = random.Random(len(known))

    def call(self, c, operation, payload):
        it = c.call(request([op(operation, payload)])).item(0)
        if it.status != SUCCESS:
            self.failures.append((operation, it))
            return None
        return it.payload

    def round(self, c):
        p = self.call(c, OP_CREATE, create_aes())
        if p is None:
            return
        uid = p.find(UNIQUE_IDENTIFIER)
        p = self.call(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)])
        if p is not None:
            self.known[uid] = key_bytes(p)
        victim = self.rng.choice(self.originals)
        if victim in self.destroyed:
            return
        p = self.call(c, OP_GET, [T(UNIQUE_IDENTIFIER, victim)])
        if p is not None and key_bytes(p) != self.known[victim]:
            self.failures.append(("bytes changed", victim))
        if self.rounds % 2:
            p = self.call(c, OP_RE_KEY, [T(UNIQUE_IDENTIFIER, victim)])
            if p is not None:
                new = p.find(UNIQUE_IDENTIFIER)
                p = self.call(c, OP_GET, [T(UNIQUE_IDENTIFIER, new)])
                self.known[new] = key_bytes(p) if p is not None else None
        elif self.call(c, OP_DESTROY, [T(UNIQUE_IDENTIFIER, victim)]) is not None:
            self.destroyed.append(victim)

    def run(self):
        try:
            with KmipConn(self.port, self.ctx, GUARD) as c:
                while not self.stop_ev.is_set():
                    self.round(c)
                    self.rounds += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(("exception", repr(e)))

    def finish(self):
        self.stop_ev.set()
        self.join(GUARD)


class RotationTest(KeeldCase):
    def set_pace(self, batch, pause_ms):
        with open(os.path.join(self.dir, "keeld.conf"), "a") as f:
            f.write("crk: { rotation_batch = %d; rotation_pause_ms = %d; };\n" % (batch,
                                                                                  pause_ms))

    def test_10000_keys_under_load_and_kill9(self):
        with self.conn() as c:
            uids = [p.find(UNIQUE_IDENTIFIER) for p in
                    batched(c, OP_CREATE, [create_aes() for _ in range(N)], k=self.k)]
            known = dict(zip(uids, get_keys(c, uids)))
        self.assertEqual(len(set(known.values())), N)
        self.assertEqual(self.k.stop(), 0)
        # 50 batches with a pause between them, so the kill lands half-way.
        self.set_pace(N // 50, 40)
        self.k = self.start()
        load = Load(self.k.port, self.ctx, uids, known)
        load.start()
        self.assertIn("CRK version 2 is active", keelctl(self.dir, "crk", "rotate"))
        keelctl(self.dir, "crk", "rotate", expect=73)  # EX_CANTCREAT: one at a time
        done = int(self.k.wait_line(self.k.err, PROGRESS).group(1))
        while done < N // 5:
            done = int(self.k.wait_line(self.k.err, PROGRESS, self.k.mark() - 1).group(1))
        load.finish()
        self.assertGreater(remaining_metric(self.dir), 0)
        self.k.kill()
        self.assertNotIn("rotation to version 2 complete", self.k.stderr_text())

        self.k = self.start()
        m = self.k.wait_line(self.k.err, r"resuming the rotation to version 2 at (\d+) of (\d+)")
        self.assertGreaterEqual(int(m.group(1)), N // 5)
        self.assertLess(int(m.group(1)), N)
        load2 = Load(self.k.port, self.ctx, uids, known)
        load2.destroyed = load.destroyed
        load2.start()
        self.k.wait_line(self.k.err, r"crk: destroyed version 1: no object refers to it")
        self.k.wait_line(self.k.err, r"crk: rotation to version 2 complete")
        load2.finish()
        self.assertEqual(load.failures + load2.failures, [])
        self.assertGreater(load.rounds + load2.rounds, 0)
        st = json.loads(keelctl(self.dir, "crk", "status", "--json"))
        self.assertEqual(st["active"], 2)
        self.assertEqual([(v["version"], v["in_token"]) for v in st["versions"]], [(2, True)])
        self.assertEqual(st["rotation"]["state"], "complete")
        self.assertEqual(remaining_metric(self.dir), 0)
        rec = json.loads(keelctl(self.dir, "audit", "show", "--op", "RotateCRK", "--json"))
        self.assertEqual([r["detail"] for r in rec["records"]], ["version 2"])
        # Keys destroyed by the load before the sweep reached them are not rewrapped.
        total, done = st["rotation"]["total"], st["rotation"]["done"]
        self.assertGreater(len(load.destroyed), 0)
        self.assertTrue(total - len(load.destroyed) <= done <= total, (done, total))

        live = [u for u in known if u not in load.destroyed and known[u] is not None]
        with self.conn() as c:
            self.assertEqual(get_keys(c, live), [known[u] for u in live])
            for u in load.destroyed[:20]:  # the rotation did not bring them back
                it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, u)])])).item(0)
                self.assertNotEqual(it.status, SUCCESS)
        self.assertEqual(self.k.stop(), 0)
        self.assertEqual(list(versions_in_store(self.dir)), [2])
        self.assertRegex(crk_list(self.dir), r"(?m)^2 ")
        self.assertNotRegex(crk_list(self.dir), r"(?m)^1 ")


class BackupTest(KeeldCase):
    N = 120

    def populate(self, c):
        """Keys in several states with names and custom attributes."""
        uids = [p.find(UNIQUE_IDENTIFIER) for p in batched(
            c, OP_CREATE, [create_aes(name="vm-%d" % i) for i in range(self.N)])]
        batched(c, OP_ADD_ATTRIBUTE, [[T(UNIQUE_IDENTIFIER, u),
                                       attribute("x-Component", TEXT, "disk-%d" % i)]
                                      for i, u in enumerate(uids[:40])])
        batched(c, OP_ACTIVATE, [[T(UNIQUE_IDENTIFIER, u)] for u in uids[40:80]])
        batched(c, OP_DESTROY, [[T(UNIQUE_IDENTIFIER, u)] for u in uids[80:90]])
        return uids

    def snapshot(self, uids):
        """Key bytes, then every attribute (after the Get, which clears Fresh)."""
        live = [u for u in uids if u not in uids[80:90]]
        with self.conn() as c:
            keys = get_keys(c, live)
            return keys, [attributes(p) for p in batched(
                c, OP_GET_ATTRIBUTES, [[T(UNIQUE_IDENTIFIER, u)] for u in uids])]

    def test_restore_into_fresh_store_same_token(self):
        with self.conn() as c:
            uids = self.populate(c)
        before = self.snapshot(uids)
        self.assertEqual(len(set(before[0])), self.N - 10)
        f = os.path.join(self.tmp, "keel.backup")
        keelctl(self.dir, "backup", "create", "--out", f)
        self.assertEqual(os.stat(f).st_mode & 0o777, 0o600)
        keelctl(self.dir, "backup", "create", "--out", f, expect=73)  # never overwritten
        info = json.loads(keelctl(self.dir, "backup", "verify", f, "--json"))
        self.assertEqual((info["objects"], info["crk_version"]), (self.N - 10, 1))
        with open(f, "rb") as fh:
            data = fh.read()
        for key in before[0]:  # never plaintext key material
            self.assertNotIn(key, data)
        bad = os.path.join(self.tmp, "tampered.backup")
        with open(bad, "wb") as fh:
            fh.write(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) +
                     data[len(data) // 2 + 1:])
        self.assertIn("altered", keelctl(self.dir, "backup", "verify", bad, expect=65))

        # A fresh store with the same token: keeld restarted on an empty database.
        self.assertEqual(self.k.stop(), 0)
        shutil.move(os.path.join(self.dir, "data"), os.path.join(self.tmp, "old-data"))
        os.mkdir(os.path.join(self.dir, "data"), 0o700)
        self.k = self.start()
        self.assertIn("altered", keelctl(self.dir, "backup", "restore", bad, expect=65))
        with self.conn() as c:  # the refused restore changed nothing
            it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, uids[0])])])).item(0)
            self.assertEqual(it.reason, ITEM_NOT_FOUND)
        conf = os.path.join(self.tmp, "restored.conf")
        out = keelctl(self.dir, "backup", "restore", f, "--config-out", conf)
        self.assertIn("%d objects" % (self.N - 10), out)
        with open(conf) as a, open(os.path.join(self.dir, "keeld.conf")) as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(self.snapshot(uids), before)
        keelctl(self.dir, "backup", "restore", f, expect=73)  # the store holds keys now
        # The trail is the backup's, extended by the restore, and still chains.
        def records(op):
            return json.loads(keelctl(self.dir, "audit", "show", "--op", op, "--limit", "1000",
                                      "--json"))["records"]
        self.assertEqual(len(records("Restore")), 1)
        self.assertEqual(records("Backup"), [])  # written after the snapshot it made
        self.assertEqual(len(records("Create")), self.N)
        keelctl(self.dir, "audit", "verify")

        # Rotating the restored keys retires version 1, and with it the backup.
        out = keelctl(self.dir, "crk", "rotate", "--wait")
        self.assertIn("rotation to CRK version 2 complete: %d of %d" % (self.N - 10,
                                                                      self.N - 10), out)
        self.assertEqual(self.snapshot(uids)[0], before[0])
        self.assertIn("does not hold the CRK version",
                      keelctl(self.dir, "backup", "verify", f, expect=65))


if __name__ == "__main__":
    unittest.main()
