#!/usr/bin/python3
"""The Key Protect mirror end to end (issue 6): a real keeld --dev configured
against the Key Protect emulator (tests/keyprotect-emulator, real TLS, API
key file 0600), enabled with `keelctl mirror enable`, keys created over KMIP.
Synchronisation is on `keelctl mirror status --json` (polled); the emulator's
own view (GET /_emulator/keys) is what the assertions check. Revocation:
the root key deleted in the emulator crypto-shreds (KMIP refused with a
clear message, no CRK left in the token, a CryptoShred audit row, still so
after a restart); disabled, it suspends key serving until enabled again;
one escrow key deleted withdraws (destroys) that one object only. Outages:
the emulator stopped for a minute, a 429 storm and token expiry while clients
create keys cost no KMIP request and lose or duplicate no escrow.

Run one test:  test_mirror.py MirrorTest.test_500_keys_escrowed
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import base64
import json
import os
import re
import sqlite3
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "keyprotect-emulator"))

from kmipwire import (OP_CREATE, OP_GET, OPERATION_FAILED, SUCCESS, UNIQUE_IDENTIFIER,  # noqa: E402
                      T, create_aes, key_bytes, op, request)
from kpclient import INSTANCE, Emulator, Kp  # noqa: E402
from test_admin import UnixHTTPConnection, answer  # noqa: E402
from test_crk import keelctl  # noqa: E402
from test_dev import GUARD, crk_list  # noqa: E402
from test_kmip import KeeldCase  # noqa: E402

APIKEY = "apikey-alice"  # one kpclient.Emulator accepts
BATCH = 50
POLL_S = 0.2
PERMISSION_DENIED = 0x0C
CRYPTO_SHRED = 0x8000a007  # the audit row's operation (store.h)
OUTAGE_S = 60  # "the emulator stops for a minute" (issue 6)
PACE_S = 1  # a client creating about a key a second meanwhile


class MirrorTest(KeeldCase):
    def setUp(self):
        self.emu = Emulator()
        self.addCleanup(self.emu.stop)
        super().setUp()
        # The first start made DIR/keeld.conf; the mirror section is read at start.
        self.assertEqual(self.k.stop(), 0)
        key_file = os.path.join(self.dir, "secrets/keyprotect.apikey")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(APIKEY + "\n")
        with open(os.path.join(self.dir, "keeld.conf"), "a") as f:
            f.write('\nmirror:\n{\n  endpoint = "%s";\n  iam_token_url = "%s/identity/token";\n'
                    '  instance_id = "%s";\n  api_key_file = "%s";\n  ca_bundle = "%s";\n};\n'
                    % (self.emu.url, self.emu.url, INSTANCE, key_file, self.emu.ca))
        self.k = self.start()

    def status(self):
        return json.loads(keelctl(self.dir, "mirror", "status", "--json"))

    def wait_state(self, state):
        """`keelctl mirror sync` (a revocation poll), then polls the status until |state|."""
        keelctl(self.dir, "mirror", "sync")
        deadline = time.monotonic() + GUARD * 2
        while self.status()["state"] != state:
            self.assertLess(time.monotonic(), deadline, "never %s: %s" % (state, self.status()))
            time.sleep(POLL_S)

    def get(self, uid, status=SUCCESS):
        with self.conn() as c:
            return self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)], status=status)

    def wait_drained(self):
        """Polls the mirror's status until its outbox is empty; returns the status."""
        deadline = time.monotonic() + GUARD * 4
        while True:
            st = self.status()
            if st["backlog"] == 0 and st["last_success"] > 0:
                return st
            self.assertLess(time.monotonic(), deadline, "backlog never drained: %s" % st)
            time.sleep(POLL_S)

    def create_keys(self, n):
        uids = []
        with self.conn() as c:
            for i in range(0, n, BATCH):
                items = c.call(request([op(OP_CREATE, create_aes())
                                        for _ in range(min(BATCH, n - i))])).items()
                for it in items:
                    self.assertEqual(it.status, SUCCESS, it)
                    uids.append(it.payload.find(UNIQUE_IDENTIFIER))
        return uids

    def escrows(self):
        """{uid: number of live keel-<uid> standard keys} in the emulator."""
        out = {}
        for k in self.emu.control("keys", method="GET"):
            if k["name"].startswith("keel-") and k["state"] != 5:
                self.assertTrue(k["extractable"], k)
                uid = k["name"][len("keel-"):]
                out[uid] = out.get(uid, 0) + 1
        return out

    def admin(self, path):
        c = UnixHTTPConnection(os.path.join(self.dir, "admin.sock"))
        try:
            return answer(c, "GET", path)
        finally:
            c.close()

    def enable(self):
        self.assertEqual(self.status()["state"], "disabled")
        out = keelctl(self.dir, "mirror", "enable")
        self.assertIn("mirrored as root key", out)
        again = json.loads(keelctl(self.dir, "mirror", "enable", "--json"))
        self.assertTrue(again["already"])
        roots = [k for k in self.emu.control("keys", method="GET") if not k["extractable"]]
        self.assertEqual([r["id"] for r in roots], [again["root_key_id"]])
        # SoftHSM 2.6 cannot wrap with OAEP-SHA-256: Key Protect generates the root key.
        self.assertEqual(again["mode"], "generated")

    def assert_no_api_key_in_logs(self):
        for line in self.k.out + self.k.err:
            self.assertNotIn(APIKEY, line or "")

    def test_500_keys_escrowed(self):
        self.enable()
        uids = self.create_keys(500)
        st = self.wait_drained()
        self.assertEqual(st["state"], "ok")
        self.assertEqual(st["mode"], "generated")
        self.assertEqual(self.escrows(), {u: 1 for u in uids})
        status, health = self.admin("/healthz")
        self.assertEqual((status, health["mirror"], health["mirror_backlog"]), (200, "ok", 0))
        status, metrics = self.admin("/metrics")
        self.assertRegex(metrics, r"(?m)^keel_mirror_backlog 0$")
        self.assertRegex(metrics, r"(?m)^keel_mirror_last_error 0$")
        last = int(re.search(r"(?m)^keel_mirror_last_success_timestamp_seconds (\d+)$",
                             metrics).group(1))
        self.assertGreater(last, 0)
        # The mirror survives a restart: the root key is in the store.
        self.assertEqual(self.k.stop(), 0)
        self.k = self.start()
        self.assertEqual(self.status()["root_key_id"], st["root_key_id"])
        more = self.create_keys(10)
        self.wait_drained()
        self.assertEqual(self.escrows(), {u: 1 for u in uids + more})
        self.assert_no_api_key_in_logs()

    def test_emulator_stops_for_a_minute(self):
        """Key Protect away for a full minute (the emulator's own pause timer:
        every IAM and Key Protect request held, keeld's in flight included)
        while a client keeps creating keys: no KMIP error; once it is back
        the backlog drains to zero, and each key has exactly one escrow."""
        self.enable()
        first = self.create_keys(20)
        self.wait_drained()
        stopped = time.monotonic()
        self.assertTrue(self.emu.control("pause", {"seconds": OUTAGE_S})["paused"])
        held = []
        # KMIP never waits for Key Protect: a client creates a key about every
        # second the whole minute (PACE_S is the client's rate, not an
        # ordering), each round checking that the backlog holds them.
        pace = threading.Event()
        while self.emu.control("pause", method="GET")["paused"]:
            held += self.create_keys(1)
            self.assertGreater(self.status()["backlog"], 0)
            pace.wait(PACE_S)
        self.assertGreaterEqual(time.monotonic() - stopped, OUTAGE_S)
        keelctl(self.dir, "mirror", "sync")
        st = self.wait_drained()
        self.assertEqual(st["state"], "ok")
        self.assertEqual(self.escrows(), {u: 1 for u in first + held})
        self.assert_no_api_key_in_logs()

    def escrow_record(self, kp, uid):
        """The JSON record keel-<uid> holds (its one live copy)."""
        ids = [k["id"] for k in self.emu.control("keys", method="GET")
               if k["name"] == "keel-" + uid and k["state"] != 5]
        self.assertEqual(len(ids), 1, uid)
        status, _, doc = kp.call("GET", "/keys/" + ids[0])
        self.assertEqual(status, 200, doc)
        return json.loads(base64.b64decode(doc["resources"][0]["payload"]))

    def test_crk_rotation_rewraps_every_escrow(self):
        """Generated mode (SoftHSM 2.6): `keelctl crk rotate` rotates Key
        Protect's root key with the CRK, and the worker rewraps every escrow
        under the new version through the outbox; each still unwraps, through
        Key Protect, to the key's bytes as KMIP Get gives them."""
        self.enable()
        uids = self.create_keys(30)
        before = self.wait_drained()
        self.assertTrue(before["in_step"])
        self.assertIn("Key Protect makes each new root key version", before["rotation"])
        keelctl(self.dir, "crk", "rotate", "--wait")
        deadline = time.monotonic() + GUARD * 4
        while True:
            st = self.status()
            if st["in_step"] and st["rewraps"] == 0 and st["backlog"] == 0:
                break
            self.assertLess(time.monotonic(), deadline, "never rewrapped: %s" % st)
            time.sleep(POLL_S)
        self.assertEqual((st["crk_version"], st["token_crk_version"]), (2, 2))
        self.assertNotEqual(st["root_version"], before["root_version"])
        kp = Kp(self.emu)
        status, _, versions = kp.call("GET", "/keys/%s/versions" % st["root_key_id"])
        self.assertEqual(status, 200, versions)
        self.assertEqual([v["id"] for v in versions["resources"]],
                         [st["root_version"], before["root_version"]])
        self.assertEqual(self.escrows(), {u: 1 for u in uids})
        for uid in uids:
            record = self.escrow_record(kp, uid)
            # The emulator's ciphertext names the version that made it (KEYPROTECT.md §5.2).
            handle = json.loads(base64.b64decode(record["ct"]))["handle"]
            self.assertEqual(handle, st["root_version"], uid)
            status, _, doc = kp.call("POST", "/keys/%s/actions/unwrap" % st["root_key_id"],
                                     {"ciphertext": record["ct"], "aad": [uid]})
            self.assertEqual(status, 200, doc)
            self.assertNotIn("rewrappedKeyVersion", doc)  # already under the newest
            self.assertIn(key_bytes(self.get(uid).payload), base64.b64decode(doc["plaintext"]))
        self.assert_no_api_key_in_logs()

    def test_escrow_holds_no_plaintext(self):
        """What Key Protect stores for a key is wrapped: its bytes appear in no
        form in the escrow payload, nor in keeld's logs or the store file."""
        self.enable()
        uids = self.create_keys(3)
        self.wait_drained()
        kp = Kp(self.emu)
        by_name = {k["name"]: k["id"] for k in self.emu.control("keys", method="GET")}
        for uid in uids:
            key = key_bytes(self.get(uid).payload)
            self.assertEqual(len(key), 32)
            status, _, doc = kp.call("GET", "/keys/" + by_name["keel-" + uid])
            self.assertEqual(status, 200, doc)
            record = json.loads(base64.b64decode(doc["resources"][0]["payload"]))
            self.assertEqual((record["v"], record["uid"]), (1, uid))
            text = json.dumps(record)
            for form in (base64.b64encode(key).decode(), key.hex(), key.hex().upper()):
                self.assertNotIn(form, text)
                for line in self.k.out + self.k.err:
                    self.assertNotIn(form, line or "")
            with open(os.path.join(self.dir, "data/keel.db"), "rb") as f:
                self.assertNotIn(key, f.read())
        self.assert_no_api_key_in_logs()

    def test_api_key_and_token_only_in_locked_memory(self):
        """After IAM tokens were fetched and used (escrows, a forced refresh),
        the API key and the bearer token are in keeld's memory only in the
        mirror's locked, non-dumpable pages (test_harden's /proc/PID/mem scan)."""
        from test_harden import memory_hits
        self.enable()
        self.create_keys(3)
        self.wait_drained()
        self.emu.control("expire-tokens")  # the next call refreshes the token
        self.create_keys(3)
        self.wait_drained()
        # The emulator's tokens are JWTs of one header: any copy starts so.
        jwt = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        for name, needle in (("API key", APIKEY.encode()), ("token", jwt.rstrip(b"=") + b".")):
            hits = memory_hits(self.k.proc.pid, needle)
            # Found where it belongs: the scan reads what it should.
            self.assertIn(True, [locked for _, locked in hits], name)
            self.assertEqual([hex(a) for a, locked in hits if not locked], [], name)

    def test_429_storm_and_token_expiry(self):
        self.enable()
        first = self.create_keys(50)
        self.wait_drained()
        # Throttled (with and without Retry-After), and every token revoked meanwhile.
        self.emu.control("faults", {"path": "^/api/v2/", "status": 429, "retryAfter": 1,
                                    "count": 6})
        self.emu.control("faults", {"path": "^/api/v2/", "status": 429, "count": 6})
        self.emu.control("expire-tokens")
        more = self.create_keys(100)
        keelctl(self.dir, "mirror", "sync")
        self.wait_drained()
        self.assertEqual(self.emu.control("faults", method="DELETE")["pendingFaults"], 0)
        statuses = [e["status"] for e in self.emu.control("log", method="GET")]
        self.assertEqual(statuses.count(429), 12)
        self.assertIn(401, statuses)  # the expired token was refused, then renewed
        self.assertEqual(self.escrows(), {u: 1 for u in first + more})
        self.assert_no_api_key_in_logs()

    def test_root_key_deleted_crypto_shreds(self):
        self.enable()
        uids = self.create_keys(20)
        self.wait_drained()
        self.get(uids[0])
        root = self.status()["root_key_id"]
        status, _, doc = Kp(self.emu).call("DELETE", "/keys/" + root)
        self.assertIn(status, (200, 204), doc)
        self.wait_state("crypto-shredded")
        it = self.get(uids[0], status=OPERATION_FAILED)
        self.assertEqual(it.reason, PERMISSION_DENIED)
        self.assertIn("crypto-shredded", it.message)
        self.assertEqual(self.k.stop(), 0)
        self.assertIn("no CRK in this token", crk_list(self.dir))
        db = sqlite3.connect(os.path.join(self.dir, "data/keel.db"))
        try:
            rows = db.execute("SELECT client, detail FROM audit WHERE operation = ?",
                              (CRYPTO_SHRED,)).fetchall()
        finally:
            db.close()
        self.assertEqual(len(rows), 1, rows)
        self.assertIn("critical", rows[0][1])
        # Irreversible: a restart still serves nothing.
        self.k = self.start()
        self.assertEqual(self.status()["state"], "crypto-shredded")
        self.assertIn("crypto-shredded", self.get(uids[1], status=OPERATION_FAILED).message)
        # keeld --dev made a CRK at start, as a fresh token gets one; the shred took it too.
        self.assertEqual(self.k.stop(), 0)
        self.assertIn("no CRK in this token", crk_list(self.dir))

    def test_root_key_disabled_suspends(self):
        self.enable()
        uids = self.create_keys(5)
        self.wait_drained()
        kp, root = Kp(self.emu), self.status()["root_key_id"]
        self.assertEqual(kp.action(root, "disable")[0], 204)
        self.wait_state("suspended")
        self.assertIn("suspended", self.get(uids[0], status=OPERATION_FAILED).message)
        self.emu.control("clock", {"advance": 60})  # enable waits 30 s after disable
        kp = Kp(self.emu)
        self.assertEqual(kp.action(root, "enable")[0], 204)
        self.wait_state("ok")
        self.get(uids[0])

    def key_state(self, uid):
        return json.loads(keelctl(self.dir, "keys", "show", uid, "--json"))["key"]["state"]

    def test_escrow_key_deleted_withdraws_that_object(self):
        self.enable()
        uids = self.create_keys(5)
        self.wait_drained()
        victim = [k for k in self.emu.control("keys", method="GET")
                  if k["name"] == "keel-" + uids[0]]
        self.assertEqual(len(victim), 1)
        status, _, doc = Kp(self.emu).call("DELETE", "/keys/" + victim[0]["id"])
        self.assertIn(status, (200, 204), doc)
        keelctl(self.dir, "mirror", "sync")
        deadline = time.monotonic() + GUARD * 2
        while self.key_state(uids[0]) != "Destroyed":
            self.assertLess(time.monotonic(), deadline, "never withdrawn")
            time.sleep(POLL_S)
        for u in uids[1:]:
            self.assertEqual(self.key_state(u), "PreActive")
            self.get(u)
        # The withdrawn object's new state is escrowed again; no loop: it stays one copy each.
        self.wait_drained()
        self.assertEqual(self.escrows(), {u: 1 for u in uids})


if __name__ == "__main__":
    unittest.main()
