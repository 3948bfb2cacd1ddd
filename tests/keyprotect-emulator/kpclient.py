"""Test-side helpers: start the emulator as a real process and talk to it
over real TLS with the standard library (no Key Protect client of ours)."""
import base64
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import procwatch  # noqa: E402

INSTANCE = "12e8c9c2-a162-472d-b7d6-8b9a86b815a6"
APIKEYS = {"apikey-alice": "iam-ServiceId-alice", "apikey-bob": "iam-ServiceId-bob"}
KEY_JSON = "application/vnd.ibm.kms.key+json"


def b64(data):
    return base64.b64encode(data).decode()


class Emulator:
    """The emulator process on a free port, with its own throwaway CA."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="kpemu-test-")
        argv = ["/usr/bin/python3", os.path.join(HERE, "emulator.py"), "--tls-dir", self.dir]
        for key, principal in APIKEYS.items():
            argv += ["--apikey", "%s=%s" % (key, principal)]
        self.proc = procwatch.Process(argv + list(extra))
        self.port = int(self.proc.wait_line(self.proc.out, r"listening on .*:(\d+)$").group(1))
        self.url = "https://127.0.0.1:%d" % self.port
        self.ca = os.path.join(self.dir, "ca.crt")
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def stop(self):
        self.proc.proc.terminate()
        self.proc.proc.wait(procwatch.GUARD)
        for stream in (self.proc.proc.stdout, self.proc.proc.stderr):
            stream.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, parsed JSON or raw bytes) over a fresh connection."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                           timeout=procwatch.GUARD)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = raw
            return resp.status, resp.headers, doc
        finally:
            conn.close()

    def control(self, what, body=None, method="POST"):
        status, _, doc = self.request(method, "/_emulator/" + what, body)
        assert status == 200, (what, status, doc)
        return doc

    def token(self, apikey="apikey-alice"):
        form = "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=" + apikey
        status, _, doc = self.request("POST", "/identity/token", form.encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        assert status == 200, doc
        return doc["access_token"]


class Kp:
    """Key Protect calls as one principal."""

    def __init__(self, emu, apikey="apikey-alice"):
        self.emu, self.bearer = emu, emu.token(apikey)

    def call(self, method, path, body=None, headers=None):
        h = {"Authorization": "Bearer " + self.bearer, "Bluemix-Instance": INSTANCE,
             "Accept": "application/json"}
        h.update(headers or {})
        return self.emu.request(method, "/api/v2" + path, body, h)

    def create(self, name, extractable=False, **fields):
        res = dict(type=KEY_JSON, name=name, extractable=extractable, **fields)
        status, _, doc = self.call("POST", "/keys", {
            "metadata": {"collectionType": KEY_JSON, "collectionTotal": 1},
            "resources": [res]}, {"Prefer": "return=representation"})
        assert status == 201, doc
        return doc["resources"][0]

    def action(self, key_id, action, body=None):
        return self.call("POST", "/keys/%s/actions/%s" % (key_id, action), body)
