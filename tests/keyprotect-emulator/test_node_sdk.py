#!/usr/bin/python3
"""IBM's Node SDK (@ibm-cloud/ibm-key-protect, node/) drives the emulator
through create, secure import, wrap, unwrap, rotate, rewrap, list and delete;
what the SDK saw must agree with the emulator's own view. Skips (exit 77
under ctest's SKIP_RETURN_CODE) only when node or the SDK is missing."""
import json
import os
import shutil
import subprocess
import sys
import unittest

from kpclient import APIKEYS, HERE, INSTANCE, Emulator

NODE_DIR = os.path.join(HERE, "node")
SDK = os.path.join(NODE_DIR, "node_modules", "@ibm-cloud", "ibm-key-protect")


class NodeSdkTest(unittest.TestCase):
    def test_sdk_agrees_with_emulator(self):
        emu = Emulator()
        self.addCleanup(emu.stop)
        env = dict(os.environ, KP_URL=emu.url, KP_INSTANCE=INSTANCE,
                   KP_APIKEY=next(iter(APIKEYS)), NODE_EXTRA_CA_CERTS=emu.ca)
        run = subprocess.run(["node", "sdk_check.js"], cwd=NODE_DIR, env=env,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr)
        seen = json.loads(run.stdout)
        keys = {k["id"]: k for k in emu.control("keys", method="GET")}

        self.assertEqual(seen["createStatus"], 201)
        self.assertEqual(seen["root"], {"id": seen["root"]["id"], "state": 1,
                                        "extractable": False, "imported": False})
        self.assertEqual(seen["importTokenRetrievals"], 1)
        imported = keys[seen["imported"]["id"]]
        self.assertTrue(seen["imported"]["imported"] and imported["imported"])
        self.assertTrue(seen["unwrapMatches"])
        self.assertEqual((seen["rotateStatus"], seen["rotateGeneratedStatus"]), (204, 204))
        self.assertEqual(imported["versions"], 2)
        self.assertEqual(keys[seen["root"]["id"]]["versions"], 2)
        current = imported["keyVersion"]["id"]
        self.assertEqual(seen["afterRotate"], {"plaintextMatches": True,
                                               "keyVersion": seen["imported"]["version"],
                                               "rewrapped": current})
        self.assertEqual(seen["rewrapVersion"], current)
        self.assertEqual(seen["versions"], [current, seen["imported"]["version"]])
        self.assertEqual(seen["secondRotate"], {"status": 409,
                                                "code": "KEY_ROTATION_NOT_PERMITTED"})
        self.assertEqual(seen["listed"], ["sdk-imported", "sdk-root", "sdk-standard"])
        self.assertEqual(seen["standardPayload"], "standard payload")
        self.assertEqual(seen["deleted"], {"status": 200, "state": 5})
        self.assertEqual(keys[seen["standardId"]]["state"], 5)
        self.assertEqual(seen["wrapDeleted"], {"status": 410})
        self.assertEqual(seen["listedWithDeleted"], 3)
        # Every SDK call reached the emulator and carried the instance header.
        statuses = [e["status"] for e in emu.control("log", method="GET")]
        self.assertNotIn(401, statuses)


if __name__ == "__main__":
    if shutil.which("node") is None or not os.path.isdir(SDK):
        print("SKIP: node or the Key Protect SDK is missing (run tools/install-deps)")
        sys.exit(77)
    unittest.main()
