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
import os
import unittest

from kmipwire import (INVALID_MESSAGE, MAXIMUM_ITEMS, OP_CREATE, OP_DISCOVER_VERSIONS, OP_LOCATE,
                      OPERATION_FAILED, SUCCESS, UNIQUE_IDENTIFIER, I, create_aes, op, request)
from test_dev import Keeld
from test_kmip import KeeldCase


class HardenCase(KeeldCase):
    """test_kmip's KeeldCase, with |conf| appended to keeld.conf after a first
    start has made the appliance directory."""

    conf = ""

    def start(self, extra=()):
        path = os.path.join(self.dir, "keeld.conf")
        if self.conf and not os.path.exists(path):
            first = Keeld(self.dir)
            self.procs.append(first)
            self.assertEqual(first.ready().stop(), 0)
            with open(path, "a") as f:
                f.write(self.conf + "\n")
        k = Keeld(self.dir, extra)
        self.procs.append(k)
        return k.ready()


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


if __name__ == "__main__":
    unittest.main()
