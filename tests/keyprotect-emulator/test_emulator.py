#!/usr/bin/python3
"""The emulator against KEYPROTECT.md: status codes, bodies and headers,
states and timers on its clock, secure import, the ciphertext format, and
fault injection. Each test starts its own emulator process."""
import base64
import http.client
import os
import threading
import time
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kpclient import INSTANCE, Emulator, Kp, b64

ERROR_COLLECTION = "application/vnd.ibm.kms.error+json"


def reason(doc):
    """The first reason code of an error body (None when it has none)."""
    assert doc["metadata"]["collectionType"] == ERROR_COLLECTION, doc
    reasons = doc["resources"][0].get("reasons")
    return reasons[0]["code"] if reasons else None


def secure_fields(token, material, nonce=None):
    """payload, encryptedNonce and iv for a secure import (KEYPROTECT.md §2)."""
    public = serialization.load_pem_public_key(base64.b64decode(token["payload"]))
    wrapped = public.encrypt(material, padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    iv = os.urandom(12)
    nonce = nonce or base64.b64decode(token["nonce"])
    return {"payload": b64(wrapped), "encryptedNonce": b64(AESGCM(material).encrypt(iv, nonce, None)),
            "iv": b64(iv), "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}


class EmulatorTest(unittest.TestCase):
    def setUp(self):
        self.emu = Emulator()
        self.addCleanup(self.emu.stop)
        self.kp = Kp(self.emu)

    def advance(self, seconds):
        """Moves the emulator's clock; a fresh token, since the old one may have expired."""
        self.emu.control("clock", {"advance": seconds})
        self.kp = Kp(self.emu)

    def test_iam_tokens(self):
        form = b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=nope"
        for path in ("/identity/token", "/oidc/token"):
            status, _, doc = self.emu.request("POST", path, form)
            self.assertEqual((status, doc["errorCode"]), (400, "BXNIM0415E"))
        status, _, doc = self.emu.request("POST", "/oidc/token", form.replace(b"nope", b"apikey-bob"))
        self.assertEqual(status, 200)
        self.assertEqual((doc["token_type"], doc["expires_in"]), ("Bearer", 3600))
        self.assertEqual(len(doc["access_token"].split(".")), 3)  # a JWT, as SDKs decode it

    def test_unauthorized(self):
        for headers in ({"Authorization": "Bearer forged"},
                        {"Bluemix-Instance": "another-instance"}, {"Bluemix-Instance": ""}):
            status, _, doc = self.kp.call("GET", "/keys", headers=headers)
            self.assertEqual(status, 401)
            self.assertEqual(doc["resources"][0]["errorMsg"],
                             "Unauthorized: The user does not have access to the specified resource")

    def test_standard_key_lifecycle(self):
        key = self.kp.create("keel-uid-1", extractable=True, payload=b64(b"escrow blob"))
        self.assertEqual((key["state"], key["imported"], key["payload"]),
                         (1, True, b64(b"escrow blob")))
        self.assertTrue(key["crn"].endswith(":%s:key:%s" % (INSTANCE, key["id"])))
        self.kp.create("keel-uid-10", extractable=True)
        status, headers, doc = self.kp.call("GET", "/keys?search=exact:name:keel-uid-1",
                                            headers={"Correlation-Id": "cid-1"})
        self.assertEqual((status, headers["Correlation-Id"]), (200, "cid-1"))
        self.assertEqual([k["id"] for k in doc["resources"]], [key["id"]])
        self.assertNotIn("payload", doc["resources"][0])
        status, headers, _ = self.kp.call("HEAD", "/keys")
        self.assertEqual(headers["Key-Total"], "2")
        status, _, doc = self.kp.call("GET", "/keys/" + key["id"])
        self.assertEqual(doc["resources"][0]["payload"], b64(b"escrow blob"))
        status, _, doc = self.kp.call("DELETE", "/keys/" + key["id"])
        self.assertEqual((status, doc), (204, None))
        status, _, doc = self.kp.call("DELETE", "/keys/" + key["id"])
        self.assertEqual((status, reason(doc)), (410, "KEY_DELETED_ERR"))
        _, _, doc = self.kp.call("GET", "/keys")
        self.assertEqual(len(doc["resources"]), 1)
        _, _, doc = self.kp.call("GET", "/keys?state=5")
        self.assertEqual([(k["id"], k["deleted"]) for k in doc["resources"]], [(key["id"], True)])
        status, _, doc = self.kp.call("GET", "/keys/no-such-key")
        self.assertEqual((status, reason(doc)), (404, "KEY_NOT_FOUND_ERR"))

    def test_wrap_unwrap_rotate_rewrap(self):
        root = self.kp.create("crk")["id"]
        status, _, w = self.kp.action(root, "wrap", {"plaintext": b64(b"k" * 32), "aad": ["uid-7"]})
        self.assertEqual(status, 200)
        self.assertNotIn("plaintext", w)
        v1 = w["keyVersion"]["id"]
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": w["ciphertext"], "aad": ["uid-8"]})
        self.assertEqual((status, reason(doc)), (422, "UNPROCESSABLE_CIPHERTEXT_ERR"))
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": w["ciphertext"], "aad": ["uid-7"]})
        self.assertEqual((status, doc), (200, {"plaintext": b64(b"k" * 32), "keyVersion": {"id": v1}}))
        status, _, doc = self.kp.action(root, "rotate")
        self.assertEqual((status, doc), (204, None))
        status, _, doc = self.kp.action(root, "rotate")
        self.assertEqual((status, reason(doc)), (409, "KEY_ROTATION_NOT_PERMITTED"))
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": w["ciphertext"], "aad": ["uid-7"]})
        v2 = doc["rewrappedKeyVersion"]["id"]
        self.assertNotEqual(v1, v2)
        self.assertEqual(doc["keyVersion"]["id"], v1)
        status, _, rw = self.kp.action(root, "rewrap", {"ciphertext": w["ciphertext"], "aad": ["uid-7"]})
        self.assertEqual((rw["keyVersion"]["id"], rw["rewrappedKeyVersion"]["id"]), (v1, v2))
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": rw["ciphertext"], "aad": ["uid-7"]})
        self.assertEqual(doc, {"plaintext": b64(b"k" * 32), "keyVersion": {"id": v2}})
        _, _, doc = self.kp.call("GET", "/keys/%s/versions" % root)
        self.assertEqual([v["id"] for v in doc["resources"]], [v2, v1])
        self.advance(3600)
        self.assertEqual(self.kp.action(root, "rotate")[0], 204)
        status, _, gen = self.kp.action(root, "wrap", {})
        self.assertEqual(len(base64.b64decode(gen["plaintext"])), 32)
        status, _, doc = self.kp.call("POST", "/keys/%s?action=unwrap" % root,
                                      {"ciphertext": gen["ciphertext"]})
        self.assertEqual((status, doc["plaintext"]), (200, gen["plaintext"]))
        std = self.kp.create("std", extractable=True)["id"]
        status, _, doc = self.kp.action(std, "wrap", {})
        self.assertEqual((status, reason(doc)), (400, "KEY_ROOT_REQ_ERR"))

    def test_secure_import(self):
        status, _, doc = self.kp.call("POST", "/import_token",
                                      {"expiration": 1200, "maxAllowedRetrievals": 2})
        self.assertEqual((status, doc["remainingRetrievals"]), (200, 2))
        self.assertNotIn("payload", doc)
        _, _, token = self.kp.call("GET", "/import_token")
        self.assertTrue(base64.b64decode(token["payload"]).startswith(
            b"-----BEGIN PUBLIC KEY-----"))
        material = os.urandom(32)
        bad = secure_fields(token, material, nonce=b"x" * 12)
        status, _, doc = self.kp.call("POST", "/keys", {
            "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
            "resources": [dict(bad, name="crk", extractable=False)]})
        self.assertEqual((status, reason(doc)), (400, "INCORRECT_NONCE_ERR"))
        crk = self.kp.create("crk", **secure_fields(token, material))
        self.assertEqual((crk["imported"], crk["extractable"]), (True, False))
        status, _, doc = self.kp.action(crk["id"], "rotate")
        self.assertEqual((status, reason(doc)), (400, "KEY_PAYLOAD_REQ_ERR"))
        _, _, token = self.kp.call("GET", "/import_token")
        self.assertEqual(token["remainingRetrievals"], 0)
        status, _, doc = self.kp.call("GET", "/import_token")
        self.assertEqual((status, reason(doc)), (409, "IMPORT_TOKEN_EXPIRED_ERR"))
        material2 = os.urandom(32)
        self.assertEqual(self.kp.action(crk["id"], "rotate", secure_fields(token, material2))[0], 204)
        # Material decides, not the key id: a twin holding material2 opens crk's ciphertexts.
        _, _, w = self.kp.action(crk["id"], "wrap", {"plaintext": b64(b"dek")})
        twin = self.kp.create("twin", payload=b64(material2))["id"]
        status, _, doc = self.kp.action(twin, "unwrap", {"ciphertext": w["ciphertext"]})
        self.assertEqual((status, doc["plaintext"]), (200, b64(b"dek")))

    def test_states_and_timers(self):
        root = self.kp.create("crk")["id"]
        self.assertEqual(self.kp.action(root, "disable")[0], 204)
        status, _, doc = self.kp.action(root, "wrap", {})
        self.assertEqual((status, reason(doc)), (409, "KEY_ACTION_INVALID_STATE_ERR"))
        status, _, doc = self.kp.action(root, "enable")
        self.assertEqual((status, reason(doc)), (409, "REQ_TOO_EARLY_ERR"))
        self.emu.control("clock", {"advance": 30})
        self.assertEqual(self.kp.action(root, "enable")[0], 204)
        status, _, doc = self.kp.call("DELETE", "/keys/" + root, headers={"Prefer": "return=representation"})
        self.assertEqual((status, doc["resources"][0]["state"]), (200, 5))
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": "eyJ9"})
        self.assertEqual(status, 410)
        self.assertTrue(doc["resources"][0]["errorMsg"].startswith("Gone: The key has been deleted"))
        status, _, doc = self.kp.call("POST", "/keys/%s/restore" % root)
        self.assertEqual((status, reason(doc)), (409, "REQ_TOO_EARLY_ERR"))
        self.emu.control("clock", {"advance": 30})
        status, _, doc = self.kp.call("POST", "/keys/%s/restore" % root)
        self.assertEqual((status, doc["resources"][0]["state"]), (201, 1))
        self.kp.call("DELETE", "/keys/" + root)
        status, _, doc = self.kp.call("DELETE", "/keys/%s/purge" % root)
        self.assertEqual((status, reason(doc)), (409, "REQ_TOO_EARLY_ERR"))
        self.advance(4 * 3600)
        self.assertEqual(self.kp.call("DELETE", "/keys/%s/purge" % root)[0], 200)
        self.assertEqual(self.kp.call("GET", "/keys/" + root)[0], 404)

    def test_expiration_deactivates(self):
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
            time.time() + 600))
        root = self.kp.create("crk", expirationDate=exp)["id"]
        _, _, w = self.kp.action(root, "wrap", {"plaintext": b64(b"d")})
        self.emu.control("clock", {"advance": 601})
        status, _, doc = self.kp.action(root, "wrap", {"plaintext": b64(b"d")})
        self.assertEqual((status, reason(doc)), (409, "KEY_ACTION_INVALID_STATE_ERR"))
        self.assertEqual(self.kp.action(root, "unwrap", {"ciphertext": w["ciphertext"]})[0], 200)

    def test_dual_auth_delete(self):
        bob = Kp(self.emu, "apikey-bob")
        key = self.kp.call("POST", "/keys_with_policy_overrides", {
            "metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1},
            "resources": [{"name": "crk", "extractable": False, "dualAuthDelete": {"enabled": True}}]})
        root = key[2]["resources"][0]["id"]
        status, _, doc = bob.call("DELETE", "/keys/" + root)
        self.assertEqual((status, reason(doc)), (409, "AUTHORIZATIONS_NOT_MET"))
        self.assertEqual(self.kp.action(root, "setKeyForDeletion")[0], 204)
        status, _, doc = self.kp.call("DELETE", "/keys/" + root)  # same principal: not enough
        self.assertEqual((status, reason(doc)), (409, "AUTHORIZATIONS_NOT_MET"))
        self.assertEqual(bob.call("DELETE", "/keys/" + root)[0], 204)
        other = self.kp.create("plain")["id"]
        status, _, doc = self.kp.action(other, "setKeyForDeletion")
        self.assertEqual((status, reason(doc)), (409, "NOT_DUAL_AUTH_ERR"))

    def test_bad_input_changes_nothing(self):
        wrap = {"metadata": {"collectionType": "x", "collectionTotal": 2},
                "resources": [{"name": "k1", "extractable": True}]}
        cases = [(b"{not json", "BAD_BODY_ERR"), (wrap, "COLLECTION_TOTAL_MISMATCH_ERR"),
                 ({"metadata": {"collectionTotal": 1}, "resources": [{"name": "k"}]},
                  "INVALID_FIELD_ERR"),
                 ({"metadata": {"collectionTotal": 1},
                   "resources": [{"name": "kk", "payload": b64(b"short")}]}, "INVALID_FIELD_ERR")]
        for body, code in cases:
            status, _, doc = self.kp.call("POST", "/keys", body)
            self.assertEqual((status, reason(doc)), (400, code), body)
        for query in ("limit=0", "limit=5001", "offset=-1", "state=7", "extractable=yes"):
            status, _, doc = self.kp.call("GET", "/keys?" + query)
            self.assertEqual((status, reason(doc)), (400, "INVALID_QUERY_PARAM_ERR"), query)
        root = self.kp.create("crk")["id"]
        status, _, doc = self.kp.action(root, "wrap", {"plaintext": "A" * 4100})
        self.assertEqual((status, reason(doc)), (400, "INVALID_FIELD_ERR"))
        status, _, doc = self.kp.action(root, "unwrap", {"ciphertext": "bm90IG91cnM="})
        self.assertEqual((status, reason(doc)), (422, "UNPROCESSABLE_CIPHERTEXT_ERR"))
        _, headers, _ = self.kp.call("HEAD", "/keys")
        self.assertEqual(headers["Key-Total"], "1")

    def test_faults(self):
        self.emu.control("faults", {"path": "^/api/v2/keys$", "status": 429, "retryAfter": 7})
        self.emu.control("faults", {"path": "^/api/v2/keys$", "status": 429})
        self.emu.control("faults", {"path": "^/api/v2/keys$", "status": 503, "count": 2})
        self.emu.control("faults", {"path": "^/api/v2/keys$", "drop": True})
        status, headers, doc = self.kp.call("GET", "/keys")
        self.assertEqual((status, headers["Retry-After"]), (429, "7"))
        self.assertEqual(doc["resources"][0]["errorMsg"],
                         "Too Many Requests: Please wait a few minutes and try again.")
        status, headers, _ = self.kp.call("GET", "/keys")
        self.assertEqual((status, headers["Retry-After"]), (429, None))
        self.assertEqual([self.kp.call("GET", "/keys")[0] for _ in range(2)], [503, 503])
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.kp.call("GET", "/keys")
        self.assertEqual(self.kp.call("GET", "/keys")[0], 200)
        self.assertEqual(self.emu.control("log", method="GET")[-1]["status"], 200)
        self.emu.control("expire-tokens")
        self.assertEqual(self.kp.call("GET", "/keys")[0], 401)
        kp = Kp(self.emu)
        self.assertEqual(kp.call("GET", "/keys")[0], 200)
        self.emu.control("clock", {"advance": 3600})  # the token's lifetime passes
        self.assertEqual(kp.call("GET", "/keys")[0], 401)

    def test_pause_holds_requests_until_resume(self):
        self.emu.control("pause")
        result = []
        t = threading.Thread(target=lambda: result.append(self.kp.call("GET", "/keys")[0]))
        t.start()
        t.join(0.5)  # a guard, not synchronisation: the request must still be held
        self.assertEqual(result, [])
        self.emu.control("resume")
        t.join(60)
        self.assertEqual(result, [200])

    def test_pause_timer_resumes_on_its_own(self):
        self.assertTrue(self.emu.control("pause", {"seconds": 1})["paused"])
        # The held request is answered once the timer runs out: no resume needed.
        self.assertEqual(self.kp.call("GET", "/keys")[0], 200)
        self.assertFalse(self.emu.control("pause", method="GET")["paused"])
        with self.assertRaises(AssertionError):
            self.emu.control("pause", {"seconds": 0})


if __name__ == "__main__":
    unittest.main()
