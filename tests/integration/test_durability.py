#!/usr/bin/python3
"""No lost acknowledgement (issue 7, group commit): 16 clients Create keys on
their own connections while keeld is killed with SIGKILL in mid-flight; keeld
started again on the same directory must serve every key whose Create was
acknowledged. (A process kill keeps the page cache, so this proves that no
response leaves before its COMMIT; that the COMMIT is on disk before the
response, against a power loss, is tests/unit/store/test_group_commit.c.)

Run one test:  test_durability.py DurabilityTest.test_acked_creates_survive_kill
Environment:   KEEL_KEELD (set by CTest).
"""
import os
import shutil
import ssl
import tempfile
import threading
import unittest

from kmipwire import (OP_CREATE, OP_GET, SUCCESS, UNIQUE_IDENTIFIER, KmipConn, T, create_aes,
                      op, request)
from test_dev import GUARD, KEELD, Keeld, client_ctx

CLIENTS = 16
ACKS_BEFORE_KILL = 300  # creates acknowledged before the kill, at least


@unittest.skipUnless(KEELD, "KEEL_KEELD not set")
class DurabilityTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="keel-durability-")
        self.dev = os.path.join(self.dir, "dev")
        self.keeld = Keeld(self.dev).ready()
        self.ctx = client_ctx(self.dev)
        self.cv = threading.Condition()
        self.acked = []

    def tearDown(self):
        self.keeld.end()
        shutil.rmtree(self.dir, ignore_errors=True)

    def creator(self):
        """Creates until the connection dies; records each acknowledged UID."""
        try:
            with KmipConn(self.keeld.port, self.ctx, GUARD) as c:
                while True:
                    resp = c.call(request([op(OP_CREATE, create_aes())]))
                    it = resp.item(0)
                    if it.status != SUCCESS:
                        continue
                    with self.cv:
                        self.acked.append(it.payload.find(UNIQUE_IDENTIFIER))
                        self.cv.notify_all()
        except (OSError, ssl.SSLError, AssertionError):
            return  # keeld was killed: whatever was acknowledged is recorded

    def test_acked_creates_survive_kill(self):
        threads = [threading.Thread(target=self.creator) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        with self.cv:
            self.assertTrue(self.cv.wait_for(lambda: len(self.acked) >= ACKS_BEFORE_KILL,
                                             GUARD), "only %d creates acknowledged" % len(
                                                 self.acked))
        self.keeld.kill()  # SIGKILL, with creates in flight on every connection
        for t in threads:
            t.join(GUARD)
        acked = list(self.acked)
        self.keeld = Keeld(self.dev).ready()
        missing = []
        with KmipConn(self.keeld.port, self.ctx, GUARD) as c:
            for uid in acked:
                it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, uid)])])).item(0)
                if it.status != SUCCESS:
                    missing.append(uid)
        self.assertEqual(missing, [], "%d of %d acknowledged keys lost" % (len(missing),
                                                                        len(acked)))


if __name__ == "__main__":
    unittest.main()
