#!/usr/bin/python3
"""The recovery drill (issue 6): a real keeld --dev mirrored to the Key
Protect emulator holds a mix of objects made over KMIP (symmetric keys
pre-active, active, deactivated and destroyed, with Names and x- custom
attributes; an RSA key pair; secret data, one over the wrap action's
limit). Once every escrow is written,
keeld stops, its token and store are wiped, and a fresh appliance (new
SoftHSM2 token, new CRK, empty store, the same keeld.conf and Key Protect
instance) runs `keelctl recover --from-keyprotect`: every object answers Get
and Get Attributes exactly as before, attribute by attribute; an escrow
tampered with in Key Protect is reported by uid and not restored while the
others are; a second run restores nothing and counts the same. The
appliance then mirrors under the root key it recovered from (mode
"adopted") and escrows again.

Run one test:  test_recover.py RecoverTest.test_drill
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "keyprotect-emulator"))

from kmipwire import (OP_ACTIVATE, OP_ADD_ATTRIBUTE, OP_CREATE,  # noqa: E402
                      OP_DESTROY, OP_GET, OP_GET_ATTRIBUTES, OPERATION_FAILED, SUCCESS,
                      TEXT, UNIQUE_IDENTIFIER, E, S, T, attribute, attributes, create_aes,
                      op, reencode, request)
from kpclient import Kp  # noqa: E402
from test_crk import keelctl  # noqa: E402
from test_dev import GUARD, KEELCTL, crk_list  # noqa: E402
import test_kmip  # noqa: E402
import test_mirror  # noqa: E402

OP_REVOKE = 0x13
REVOCATION_REASON, REVOCATION_REASON_CODE = 0x420081, 0x420082
CESSATION_OF_OPERATION = 5
EX_DATAERR = 65
EX_CANTCREAT = 73


class RecoverTest(test_mirror.MirrorTest):
    """The mirrored appliance of test_mirror.py (its fixture and helpers), not its tests."""
    pykmip = test_kmip.PyKmipTest.client

    def item(self, c, operation, payload, status=SUCCESS):
        it = c.call(request([op(operation, payload)], version=(1, 4))).item(0)
        self.assertEqual(it.status, status, it)
        return it

    def make_objects(self):
        """The mix of objects a vCenter and others leave; returns their uids."""
        from kmip.core import enums
        from kmip.pie import objects
        uids = []
        with self.conn() as c:
            def aes(name, length=256):
                uid = self.item(c, OP_CREATE, create_aes(length=length, name=name)).payload.find(
                    UNIQUE_IDENTIFIER)
                self.item(c, OP_ADD_ATTRIBUTE, [T(UNIQUE_IDENTIFIER, uid), attribute(
                    "x-vmware-vm", TEXT, "vm-%s" % name)])
                uids.append(uid)
                return uid

            aes("pre-active", 128)
            self.item(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, aes("active"))])
            deactivated = aes("deactivated")
            self.item(c, OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, deactivated)])
            self.item(c, OP_REVOKE, [T(UNIQUE_IDENTIFIER, deactivated), S(
                REVOCATION_REASON, E(REVOCATION_REASON_CODE, CESSATION_OF_OPERATION))])
            self.item(c, OP_DESTROY, [T(UNIQUE_IDENTIFIER, aes("destroyed"))])
        with self.pykmip() as p:
            uids.extend(p.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048))
            uids.append(p.register(objects.SecretData(
                b"drill secret", enums.SecretDataType.PASSWORD)))
            # Over the wrap action's 3,072 bytes: sealed locally, its data key wrapped.
            uids.append(p.register(objects.SecretData(os.urandom(4000),
                                                      enums.SecretDataType.SEED)))
        return uids

    def snapshot(self, uids):
        """{uid: (Get's payload as TTLV or its failure, {attribute: [values]})}."""
        out = {}
        with self.conn() as c:
            for uid in uids:
                it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, uid)])],
                                    version=(1, 4))).item(0)
                got = reencode(it.payload) if it.status == SUCCESS else (it.status, it.reason)
                attrs = self.item(c, OP_GET_ATTRIBUTES, [T(UNIQUE_IDENTIFIER, uid)]).payload
                out[uid] = (got, attributes(attrs))
        return out

    def tamper(self, uid):
        """Replaces keel-<uid> in Key Protect by a copy whose ciphertext has one byte flipped."""
        kp = Kp(self.emu)
        [key] = [k for k in self.emu.control("keys", method="GET")
                 if k["name"] == "keel-" + uid and k["state"] != 5]
        status, _, doc = kp.call("GET", "/keys/" + key["id"])
        self.assertEqual(status, 200, doc)
        record = json.loads(base64.b64decode(doc["resources"][0]["payload"]))
        field = "ct" if "ct" in record else "sealed"
        blob = bytearray(base64.b64decode(record[field]))
        blob[len(blob) // 2] ^= 0x01
        record[field] = base64.b64encode(bytes(blob)).decode()
        kp.create("keel-" + uid, extractable=True,
                  payload=base64.b64encode(json.dumps(record).encode()).decode())
        status, _, doc = kp.call("DELETE", "/keys/" + key["id"])
        self.assertIn(status, (200, 204), doc)

    def wipe(self):
        """The appliance's token and store gone (certificates and keeld.conf stay);
        keeld's next start makes a new token and CRK and an empty store."""
        self.assertEqual(self.k.stop(), 0)
        old = crk_list(self.dir)
        for d in ("softhsm/tokens", "data"):
            shutil.rmtree(os.path.join(self.dir, d))
            os.mkdir(os.path.join(self.dir, d), 0o700)
        for pin in ("user.pin", "so.pin"):
            os.unlink(os.path.join(self.dir, "secrets", pin))
        self.k = self.start()
        self.assertEqual(self.k.stop(), 0)
        self.assertNotEqual(crk_list(self.dir), old)
        self.k = self.start()

    def run_recover(self, *extra, expect=0):
        r = subprocess.run([KEELCTL, "recover", "--from-keyprotect", *extra, "--config",
                            os.path.join(self.dir, "keeld.conf")],
                           capture_output=True, timeout=GUARD * 4, text=True)
        self.assertEqual(r.returncode, expect, r.stdout + r.stderr)
        return r

    def recover(self, *extra, expect=0):
        """Runs the recovery; returns (escrows, restored, present, failed) and its report."""
        r = self.run_recover(*extra, expect=expect)
        m = re.search(r"(\d+) escrows, (\d+) restored, (\d+) already present, (\d+) failed",
                      r.stdout)
        self.assertIsNotNone(m, r.stdout)
        counts = tuple(int(x) for x in m.groups())
        # Not a terminal: progress as done/total lines, ending at the total.
        self.assertIn("%d/%d\n" % (counts[0], counts[0]), r.stderr)
        return counts, r.stdout

    def test_drill(self):
        self.enable()
        uids = self.make_objects()
        with self.conn() as c:
            victim = self.item(c, OP_CREATE, create_aes(name="tampered")).payload.find(
                UNIQUE_IDENTIFIER)
        before = self.snapshot(uids)  # Get clears Fresh: escrowed again, then drained
        self.wait_drained()
        self.assertEqual(set(self.escrows()), set(uids) | {victim})
        self.tamper(victim)
        self.root_id = self.status()["root_key_id"]

        self.wipe()
        self.assertEqual(self.status()["state"], "disabled")
        with self.conn() as c:
            self.item(c, OP_GET, [T(UNIQUE_IDENTIFIER, uids[0])], status=OPERATION_FAILED)

        counts, out = self.recover(expect=EX_DATAERR)
        n = len(uids) + 1
        self.assertEqual(counts, (n, n - 1, 0, 1), out)
        self.assertIn("  %s: Key Protect refused to unwrap it" % victim, out)
        after = self.snapshot(uids)
        for uid in uids:
            self.assertEqual(after[uid][0], before[uid][0], uid)
            for name, values in before[uid][1].items():
                self.assertEqual(after[uid][1].get(name), values, "%s %s" % (uid, name))
            self.assertEqual(set(after[uid][1]), set(before[uid][1]), uid)
        with self.conn() as c:
            self.item(c, OP_GET, [T(UNIQUE_IDENTIFIER, victim)], status=OPERATION_FAILED)

        # The worker escrows each object again, under the root key it recovered from.
        st = self.wait_drained()
        self.assertEqual((st["mode"], st["state"], st["root_key_id"]),
                         ("adopted", "ok", self.root_id))
        self.assertEqual({u: 1 for u in uids}, {u: c for u, c in self.escrows().items()
                                                if u != victim})

        # keeld restarted: the adopted root key holds, and a rerun needs no --force.
        self.assertEqual(self.k.stop(), 0)
        self.k = self.start()
        counts, out = self.recover(expect=EX_DATAERR)
        self.assertEqual(counts, (n, 0, n - 1, 1), out)
        self.assertEqual((self.status()["mode"], self.status()["backlog"]), ("adopted", 0))
        self.assertEqual(self.snapshot(uids), after)
        # A row per object restored, and each run's start and end.
        rows = json.loads(keelctl(self.dir, "audit", "show", "--op", "Recover", "--json"))
        rows = rows.get("records", rows) if isinstance(rows, dict) else rows
        self.assertEqual(sorted(r["uid"] for r in rows if r.get("uid")), sorted(uids), rows)
        self.assertEqual(len([r for r in rows if not r.get("uid")]), 4, rows)

    def test_refusals(self):
        """No root key of Keel's: refused. A store holding objects: refused, unless
        --force. Nothing escrowed: a recovery of nothing, which adopts the root key."""
        out = self.recover_refused()
        self.assertIn("no live root key", out)
        root = Kp(self.emu).create("crk-keel")
        with self.conn() as c:
            self.item(c, OP_CREATE, create_aes(name="already-here"))
        self.assertIn("the store holds objects", self.recover_refused())
        self.assertEqual(self.status()["state"], "disabled")
        counts, _ = self.recover("--force")
        self.assertEqual(counts, (0, 0, 0, 0))
        st = self.wait_drained()
        self.assertEqual((st["mode"], st["root_key_id"]), ("adopted", root["id"]))

    def recover_refused(self):
        return self.run_recover(expect=EX_CANTCREAT).stderr


for _name in [n for n in dir(test_mirror.MirrorTest) if n.startswith("test_")]:
    setattr(RecoverTest, _name, None)

if __name__ == "__main__":
    unittest.main()
