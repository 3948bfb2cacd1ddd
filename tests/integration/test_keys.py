#!/usr/bin/python3
"""Administrators' keys, grants and audit trail (issue 5) against keeld --dev:
a second client sees nothing of the first's key until `keelctl grant`, then
reads it, cannot destroy it, and sees nothing again after `revoke-grant`;
`keelctl keys` finds a VM's key by vCenter's attributes, shows it without its
material, refuses to destroy it without confirmation or while it is Active,
and says which VM it protected; `keelctl audit verify` holds until a record
is altered or deleted in the store file, then names the first bad one.

Run by CTest, one test per process: test_keys.py KeysTest.test_grant_then_revoke_grant
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import hashlib
import json
import os
import sqlite3
import ssl
import struct
import subprocess
import sys
import unittest

from kmipwire import (OP_ADD_ATTRIBUTE, OP_DESTROY, OP_DISCOVER_VERSIONS, OP_GET, OP_LOCATE, TEXT,
                      UNIQUE_IDENTIFIER, ITEM_NOT_FOUND, T, attribute, key_bytes, op, request)
from test_dev import GUARD
from test_kmip import KeeldCase, make_cert

PERMISSION_DENIED = 0x0C
EX_USAGE, EX_CANTCREAT = 64, 73


def chain_hash(prev, row):
    """store.h's canonical record, computed independently of the C code."""
    def text(v):
        if v is None:
            return struct.pack(">I", 0xFFFFFFFF)
        b = v.encode()
        return struct.pack(">I", len(b)) + b
    rid, time, client, operation, uid, status, reason, detail = row
    return hashlib.sha256(prev + struct.pack(">qq", rid, time) + text(client) +
                          struct.pack(">I", operation) + text(uid) +
                          struct.pack(">II", status, reason) + text(detail)).digest()


def fingerprint(crt):
    der = ssl.PEM_cert_to_DER_cert(open(crt).read())
    return hashlib.sha256(der).hexdigest()


class KeysTest(KeeldCase):
    def keelctl(self, *args, status=0, stdin=subprocess.DEVNULL):
        r = subprocess.run([os.environ["KEEL_KEELCTL"], *args, "--config",
                            os.path.join(self.dir, "keeld.conf")],
                           capture_output=True, timeout=GUARD, stdin=stdin)
        self.assertEqual(r.returncode, status, (args, r.stdout, r.stderr))
        return r.stdout.decode()

    def keelctl_json(self, *args, status=0):
        return json.loads(self.keelctl(*args, "--json", status=status))

    def second_client(self):
        """A client certificate from the dev CA, registered with keelctl client add."""
        crt, key = make_cert(self.tmp, "second-client", os.path.join(self.dir, "certs/ca.crt"),
                             os.path.join(self.dir, "secrets/ca.key"))
        self.keelctl("client", "add", "--cert", crt)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.dir, "certs/ca.crt"))
        ctx.load_cert_chain(crt, key)
        return ctx, fingerprint(crt)

    def add_attr(self, c, uid, name, value):
        self.call1(c, OP_ADD_ATTRIBUTE, [T(UNIQUE_IDENTIFIER, uid), attribute(name, TEXT, value)])

    def test_grant_then_revoke_grant(self):
        ctx_b, fp_b = self.second_client()
        with self.conn() as a:
            uid = self.create(a, name="shared-key")
            material = key_bytes(self.call1(a, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload)
        get = [T(UNIQUE_IDENTIFIER, uid)]
        with self.conn(ctx_b) as b:
            self.assertEqual(self.call1(b, OP_GET, get, status=1).reason, ITEM_NOT_FOUND)
            self.assertEqual(self.call1(b, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER), [])
        # Clients by name (keelctl client add named it after its CN) or by fingerprint.
        self.assertIn("granted key", self.keelctl("grant", "--uid", uid, "--to", "second-client"))
        with self.conn(ctx_b) as b:
            self.assertEqual(key_bytes(self.call1(b, OP_GET, get).payload), material)
            found = self.call1(b, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER)
            self.assertEqual([u.value for u in found], [uid])
            # A use grant reads; it does not destroy.
            self.assertEqual(self.call1(b, OP_DESTROY, get, status=1).reason, PERMISSION_DENIED)
        grants = self.keelctl_json("grants", "--to", "second-client")["grants"]
        self.assertEqual([g["grantee"] for g in grants], [fp_b])
        self.assertEqual([(g["uid"], g["level"], g["granted_by"]) for g in grants],
                         [(uid, "use", "local:uid=0")])
        self.keelctl("revoke-grant", "--uid", uid, "--to", fp_b)
        with self.conn(ctx_b) as b:
            self.assertEqual(self.call1(b, OP_GET, get, status=1).reason, ITEM_NOT_FOUND)
            self.assertEqual(self.call1(b, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER), [])
        self.keelctl("revoke-grant", "--uid", uid, "--to", fp_b, status=66)  # none left
        self.keelctl("grant", "--uid", uid, status=EX_USAGE)  # no grantee
        self.keelctl("grant", "--uid", uid, "--to", "nobody", status=66)
        ops = [r["operation"] for r in self.keelctl_json("audit", "show", "--uid", uid,
                                                         "--client", "local:uid=0")["records"]]
        self.assertEqual(ops, ["RevokeGrant", "RevokeGrant", "Grant"])

    def test_find_show_and_destroy_a_vms_key(self):
        with self.conn() as a:
            other = self.create(a)
            uid = self.create(a)
            self.add_attr(a, uid, "x-Name", "vm01")
            self.add_attr(a, uid, "x-Component", "Virtual Machine")
            material = key_bytes(self.call1(a, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload)
        keys = self.keelctl_json("keys", "search", "--attr", "x-Name=vm01",
                                 "--attr", "x-Component=Virtual Machine")["keys"]
        self.assertEqual([(k["uid"], k["vm_name"]) for k in keys], [(uid, "vm01")])
        self.assertEqual(len(self.keelctl_json("keys", "list")["keys"]), 2)
        self.keelctl("keys", "search", status=EX_USAGE)  # a search needs a filter
        shown = self.keelctl("keys", "show", uid)
        self.assertIn("vm01", shown)
        self.assertNotIn(material.hex(), shown.lower())
        self.keelctl("keys", "activate", uid)
        # Without a terminal nor --yes: refused, and the key is untouched.
        self.keelctl("keys", "destroy", uid, status=EX_USAGE)
        err = subprocess.run([os.environ["KEEL_KEELCTL"], "keys", "destroy", uid, "--yes",
                              "--config", os.path.join(self.dir, "keeld.conf")],
                             capture_output=True, timeout=GUARD)
        self.assertEqual(err.returncode, EX_CANTCREAT)  # 409: revoke an Active key first
        self.assertIn(b"object is Active", err.stderr)
        self.keelctl("keys", "revoke", uid, "--reason", "CessationOfOperation")
        out = self.keelctl("keys", "destroy", uid, "--yes")
        self.assertIn('Virtual Machine "vm01"', out)
        self.assertIn("Destroyed", out)
        with self.conn() as a:
            self.call1(a, OP_GET, [T(UNIQUE_IDENTIFIER, uid)], status=1)
            self.call1(a, OP_GET, [T(UNIQUE_IDENTIFIER, other)])
        records = self.keelctl_json("audit", "show", "--client", "local:uid=0")["records"]
        self.assertEqual([(r["operation"], r["result"]) for r in records],
                         [("Destroy", "Success"), ("Revoke", "Success"),
                          ("Destroy", "OperationFailed"), ("Activate", "Success")])
        self.assertEqual(records[1]["detail"], "reason=CessationOfOperation")

    def destroy_on_a_terminal(self, uid, answer):
        """keelctl keys destroy with a terminal as stdin, answering |answer|."""
        master, slave = os.openpty()
        try:
            p = subprocess.Popen([os.environ["KEEL_KEELCTL"], "keys", "destroy", uid, "--config",
                                  os.path.join(self.dir, "keeld.conf")],
                                 stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            os.write(master, answer.encode() + b"\n")
            out, err = p.communicate(timeout=GUARD)
        finally:
            os.close(master)
            os.close(slave)
        return p.returncode, out.decode(), err.decode()

    def test_destroy_asks_on_a_terminal(self):
        with self.conn() as a:
            uid = self.create(a)
            self.add_attr(a, uid, "x-Name", "vm02")
            self.add_attr(a, uid, "x-Component", "Virtual Machine")
        status, out, err = self.destroy_on_a_terminal(uid, "no")
        self.assertEqual(status, 75, err)  # EX_TEMPFAIL: not confirmed
        self.assertIn('Virtual Machine "vm02"', out)
        self.assertIn("Type 'yes'", out)
        self.assertEqual(self.keelctl_json("keys", "show", uid)["key"]["state"], "PreActive")
        status, out, err = self.destroy_on_a_terminal(uid, "yes")
        self.assertEqual(status, 0, err)
        self.assertEqual(self.keelctl_json("keys", "show", uid)["key"]["state"], "Destroyed")

    def test_https_admins_audited_under_their_certificate(self):
        def issue(name, role):
            crt, key = os.path.join(self.tmp, name + ".crt"), os.path.join(self.tmp, name + ".key")
            self.keelctl("client", "issue", "--name", name, "--role", role, "--out-cert", crt,
                         "--out-key", key)
            return ["--admin-cert", crt, "--admin-key", key,
                    "--cacert", os.path.join(self.dir, "certs/ca.crt")], fingerprint(crt)
        ops, ops_fp = issue("ops", "admin")
        audit, _ = issue("audit", "auditor")
        with self.conn() as a:
            uid = self.create(a)
        self.keelctl("audit", "verify", *audit)  # an auditor reads
        self.keelctl("keys", "activate", uid, *audit, status=77)  # and writes nothing
        self.keelctl("grant", "--client", "ops", "--to", "audit", status=65)  # not KMIP clients
        self.keelctl("keys", "activate", uid, *ops)
        records = self.keelctl_json("audit", "show", "--client", "ops")["records"]
        self.assertEqual([(r["client"], r["operation"], r["uid"]) for r in records],
                         [("cert:" + ops_fp, "Activate", uid)])

    def test_audit_verify_names_the_first_bad_record(self):
        with self.conn() as a:
            for _ in range(4):
                uid = self.create(a)
                self.call1(a, OP_GET, [T(UNIQUE_IDENTIFIER, uid)])
        self.assertIn("intact: 8 records", self.keelctl("audit", "verify"))
        db = sqlite3.connect(os.path.join(self.dir, "data", "keel.db"), timeout=GUARD)
        with db:
            db.execute("DELETE FROM audit WHERE id = 6")
        out = self.keelctl("audit", "verify", status=1)
        self.assertIn("record 6 is missing", out)
        with db:
            db.execute("UPDATE audit SET result_status = 0, uid = 'x' WHERE id = 3")
        out = self.keelctl("audit", "verify", status=1)
        self.assertIn("record 3 is altered", out)
        self.assertEqual(self.keelctl_json("audit", "verify", status=1)["bad_records"], 2)
        db.close()

    def test_logged_anchor_catches_a_recomputed_chain(self):
        # 1000 records make keeld log an anchor (KEEL_AUDIT_ANCHOR_EVERY).
        mark = self.k.mark()
        with self.conn() as a:
            for _ in range(16):
                self.ok(a.call(request([op(OP_DISCOVER_VERSIONS, [])] * 64)), 64)
        anchor = self.k.wait_line(self.k.err, r"audit: anchor (\d+:[0-9a-f]{64})", mark).group(1)
        db = sqlite3.connect(os.path.join(self.dir, "data", "keel.db"), timeout=GUARD)
        cols = "id, time, client, operation, uid, result_status, result_reason, detail"
        rows = db.execute("SELECT " + cols + ", hash FROM audit ORDER BY id").fetchall()
        prev = bytes(32)
        for r in rows:  # the documented encoding reproduces every stored hash
            prev = chain_hash(prev, r[:8])
            self.assertEqual(prev, r[8], r[0])
        # Someone with the store file alters record 10 and recomputes every later hash:
        # the chain verifies, but not against the anchor keeld logged.
        with db:
            db.execute("UPDATE audit SET client = 'someone else' WHERE id = 10")
            prev = {r[0]: r[8] for r in rows}[9]
            for r in db.execute("SELECT " + cols + " FROM audit WHERE id >= 10 ORDER BY id"):
                prev = chain_hash(prev, r)
                db.execute("UPDATE audit SET hash = ? WHERE id = ?", (prev, r[0]))
        db.close()
        self.assertIn("intact", self.keelctl("audit", "verify"))
        out = self.keelctl("audit", "verify", "--anchor", anchor, status=1)
        self.assertIn("record %s does not carry the anchored hash" % anchor.split(":")[0], out)
        self.keelctl("audit", "verify", "--anchor", "12:zz", status=65)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
