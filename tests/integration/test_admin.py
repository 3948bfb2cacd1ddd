#!/usr/bin/python3
"""Integration tests of issue 5's admin plane: keeld --dev's management API
(HTTPS with client certificates and the local UNIX socket), /healthz and
/metrics, keelctl's plumbing, and docs/admin-api.yaml against the C route table.

Synchronisation is on events only (keeld's READY line, answers). GUARD
timeouts only fail a stuck test.

Run one test:  test_admin.py AdminApiTest.test_status_over_socket
Environment:   KEEL_KEELD, KEEL_KEELCTL (set by CTest).
"""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kmipwire import OP_DISCOVER_VERSIONS, KmipConn, op, request
from procwatch import GUARD
from test_dev import KEELCTL, KEELD, Keeld, client_ctx

HERE = os.path.dirname(os.path.abspath(__file__))
API_YAML = os.path.join(HERE, "..", "..", "docs", "admin-api.yaml")
METHODS = ("get", "post", "put", "patch", "delete")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over keeld's admin socket."""

    def __init__(self, path):
        super().__init__("keeld", timeout=GUARD)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(GUARD)
        self.sock.connect(self.path)


def answer(conn, method, path, body=None):
    """(status, decoded JSON or text) of one request."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read().decode()
    if r.getheader("Content-Type", "").startswith("application/json"):
        return r.status, json.loads(data)
    return r.status, data


def c_routes():
    """{(METHOD, path): role} of `keeld --print-routes`."""
    out = subprocess.run([KEELD, "--print-routes"], capture_output=True, check=True,
                         timeout=GUARD).stdout.decode()
    routes = {}
    for line in out.splitlines():
        method, path, role = line.split()
        routes[(method, path)] = role
    return routes


class OpenApiTest(unittest.TestCase):
    """docs/admin-api.yaml: a well-formed OpenAPI 3 document (structural
    check: Debian has no OpenAPI validator) listing exactly the C routes."""

    def setUp(self):
        if not KEELD:
            self.skipTest("KEEL_KEELD not set")
        with open(API_YAML) as f:
            self.doc = yaml.safe_load(f)

    def test_structure(self):
        d = self.doc
        self.assertRegex(d["openapi"], r"^3\.\d+\.\d+$")
        self.assertTrue(d["info"]["title"] and d["info"]["version"])
        self.assertIsInstance(d["paths"], dict)
        ids = set()
        for path, item in d["paths"].items():
            self.assertTrue(path.startswith("/"), path)
            params = set(re.findall(r"{(\w+)}", path))
            for method, operation in item.items():
                self.assertIn(method, METHODS + ("parameters",), (path, method))
                if method == "parameters":
                    continue
                self.assertNotIn(operation["operationId"], ids)
                ids.add(operation["operationId"])
                self.assertTrue(operation["responses"], (path, method))
                for code in operation["responses"]:
                    self.assertRegex(str(code), r"^[1-5]\d\d$")
                declared = {p["name"] for p in item.get("parameters", []) +
                            operation.get("parameters", []) if p.get("in") == "path"}
                self.assertEqual(declared, params, (path, method))
        self.assert_refs_resolve(d, d)

    def assert_refs_resolve(self, node, root):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    target = root
                    for part in v.lstrip("#/").split("/"):
                        self.assertIn(part, target, v)
                        target = target[part]
                else:
                    self.assert_refs_resolve(v, root)
        elif isinstance(node, list):
            for v in node:
                self.assert_refs_resolve(v, root)

    def test_lists_exactly_the_c_routes(self):
        documented = {}
        for path, item in self.doc["paths"].items():
            for method, operation in item.items():
                if method in METHODS:
                    documented[(method.upper(), path)] = operation["x-keel-role"]
        self.assertEqual(documented, c_routes())


@unittest.skipUnless(KEELD and KEELCTL, "KEEL_KEELD and KEEL_KEELCTL not set")
class AdminCase(unittest.TestCase):
    """One keeld --dev per test; its admin socket and HTTPS port from keeld.conf."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="keel-admin-test-")
        self.dir = os.path.join(self.tmp, "dev")
        self.conf = os.path.join(self.dir, "keeld.conf")
        self.k = Keeld(self.dir)
        self.k.ready()
        with open(self.conf) as f:
            m = re.search(r'admin: \{ listen = \[ "127\.0\.0\.1:(\d+)" \]; '
                          r'socket = "admin\.sock"; \};', f.read())
        self.admin_port = int(m.group(1))
        self.sock = os.path.join(self.dir, "admin.sock")

    def tearDown(self):
        self.k.kill()
        for f in (self.k.proc.stdout, self.k.proc.stderr):
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def local(self, method, path, body=None):
        c = UnixHTTPConnection(self.sock)
        try:
            return answer(c, method, path, body)
        finally:
            c.close()

    def https(self, method, path, body=None, cert=None, key=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.dir, "certs/ca.crt"))
        if cert:
            ctx.load_cert_chain(cert, key)
        c = http.client.HTTPSConnection("127.0.0.1", self.admin_port, context=ctx,
                                        timeout=GUARD)
        try:
            return answer(c, method, path, body)
        finally:
            c.close()

    def keelctl(self, *args, status=0):
        r = subprocess.run([KEELCTL, *args, "--config", self.conf],
                           capture_output=True, timeout=GUARD)
        self.assertEqual(r.returncode, status, r.stderr.decode())
        return r.stdout.decode(), r.stderr.decode()


class AdminApiTest(AdminCase):
    def test_status_over_socket(self):
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
        status, s = self.local("GET", "/v1/status")
        self.assertEqual(status, 200, s)
        self.assertEqual(s["token"]["state"], "ok")
        self.assertGreaterEqual(s["token"]["crk_version"], 1)
        self.assertEqual(s["store"]["state"], "ok")
        out, _ = self.keelctl("status", "--json")
        self.assertEqual(json.loads(out)["token"]["label"], "keel-dev")
        out, _ = self.keelctl("status")
        self.assertRegex(out, r"token +ok +keel-dev, CRK version \d+")

    def test_healthz_needs_no_certificate(self):
        status, h = self.https("GET", "/healthz")
        self.assertEqual((status, h), (200, {"status": "ok", "token": "ok", "store": "ok",
                                             "mirror": "disabled"}))

    def test_refusals(self):
        status, e = self.https("GET", "/v1/status")
        self.assertEqual(status, 401)
        self.assertIn("certificate is required", e["error"])
        self.assertEqual(self.local("GET", "/v1/nothing")[0], 404)
        self.assertEqual(self.local("DELETE", "/v1/status")[0], 405)
        # keelctl: sysexits codes, the API's message on stderr.
        _, err = self.keelctl("status", "--cert", os.path.join(self.dir, "certs/ca.crt"),
                              "--key", os.path.join(self.dir, "secrets/ca.key"),
                              "--cacert", os.path.join(self.dir, "certs/ca.crt"), status=77)
        self.assertIn("is not registered", err)
        self.k.kill()
        _, err = self.keelctl("status", status=69)
        self.assertIn("cannot reach keeld", err)

    def test_metrics_count_a_kmip_request(self):
        def discover_count():
            status, text = self.local("GET", "/metrics")
            self.assertEqual(status, 200)
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if (s.name == "keel_kmip_requests_total" and
                            s.labels == {"operation": "DiscoverVersions", "result": "success"}):
                        return s.value
            return 0
        before = discover_count()
        with KmipConn(self.k.port, client_ctx(self.dir), GUARD) as c:
            c.call(request([op(OP_DISCOVER_VERSIONS, [])]))
        self.assertEqual(discover_count(), before + 1)
        families = {f.name: f for f in text_string_to_metric_families(self.local("GET",
                                                                                  "/metrics")[1])}
        for name in ("keel_kmip_request_duration_seconds", "keel_tls_handshakes",
                     "keel_hsm_call_duration_seconds", "keel_store_commit_duration_seconds",
                     "keel_tls_connections", "keel_mirror_backlog"):
            self.assertIn(name, families)
        ok = [s for s in families["keel_tls_handshakes"].samples
              if s.labels.get("result") == "ok"]
        self.assertGreaterEqual(ok[0].value, 1)


if __name__ == "__main__":
    unittest.main()
