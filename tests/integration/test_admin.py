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
import pty
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import sqlite3
import time
import unittest

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kmipwire import (OP_ACTIVATE, OP_CREATE, OP_DISCOVER_VERSIONS, OP_GET, SUCCESS, UNIQUE_IDENTIFIER,
                      KmipConn, T, create_aes, key_bytes, op, request)
from procwatch import GUARD
from test_dev import KEELCTL, KEELD, Keeld, client_ctx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "firmware-image", "setup"))
import keel_setup  # noqa: E402  first boot's verifier of an enrolment code
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
                declared = {p["name"] for p in map(self.resolve, item.get("parameters", []) +
                                                   operation.get("parameters", []))
                            if p.get("in") == "path"}
                self.assertEqual(declared, params, (path, method))
        self.assert_refs_resolve(d, d)

    def resolve(self, node):
        while "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

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
        self.k.end()  # SIGKILL, or SIGTERM under memcheck (procwatch.Process.end)
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
        # The global form keeld --dev prints: keelctl --config FILE COMMAND.
        r = subprocess.run([KEELCTL, "--config", self.conf, "--json", "status"],
                           capture_output=True, timeout=GUARD)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(json.loads(r.stdout)["token"]["label"], "keel-dev")
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

    def metrics(self):
        """{(sample name, frozen labels): value} of /metrics, parsed as Prometheus text."""
        status, text = self.local("GET", "/metrics")
        self.assertEqual(status, 200)
        return {(s.name, frozenset(s.labels.items())): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    def test_metrics_count_a_kmip_request(self):
        discover = ("keel_kmip_requests_total",
                    frozenset({"operation": "DiscoverVersions", "result": "success"}.items()))
        create = ("keel_kmip_requests_total",
                  frozenset({"operation": "Create", "result": "success"}.items()))
        hsm = ("keel_hsm_call_duration_seconds_count", frozenset())
        commits = ("keel_store_commit_duration_seconds_count", frozenset())
        before = self.metrics()
        with KmipConn(self.k.port, client_ctx(self.dir), GUARD) as c:
            c.call(request([op(OP_DISCOVER_VERSIONS, [])]))
            it = c.call(request([op(OP_CREATE, create_aes())])).item(0)
            self.assertEqual(it.status, SUCCESS, it)
            it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER,
                                               it.payload.find(UNIQUE_IDENTIFIER))])])).item(0)
            self.assertEqual(it.status, SUCCESS, it)
            during = self.metrics()  # the connection is still open
        after = self.metrics()
        self.assertEqual(after[discover], before.get(discover, 0) + 1)
        self.assertEqual(after[create], before.get(create, 0) + 1)
        self.assertGreaterEqual(after[hsm], before[hsm] + 2)  # wrap at Create, unwrap at Get
        # Create and Get each wait for their commit; Discover Versions' audit
        # row does not (e4f8131) and may ride in Create's.
        self.assertGreaterEqual(after[commits], before[commits] + 2)
        latency = ("keel_kmip_request_duration_seconds_count",
                   frozenset({"operation": "Create"}.items()))
        self.assertEqual(after[latency], before.get(latency, 0) + 1)
        self.assertEqual(during[("keel_tls_connections", frozenset())], 1)
        ok = ("keel_tls_handshakes_total", frozenset({"result": "ok"}.items()))
        self.assertEqual(after[ok], before[ok] + 1)
        self.assertIn(("keel_mirror_backlog", frozenset()), after)


REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=GUARD)


def tls_ctx(dev, crt, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(dev, "certs/ca.crt"))
    ctx.load_cert_chain(crt, key)
    return ctx


class TrustTest(AdminCase):
    """vCenter's ways to trust Keel (VCENTER.md §4), each certificate made as
    vCenter makes it, registered with keelctl, then used for KMIP."""

    def path(self, name):
        return os.path.join(self.tmp, name)

    def create_and_get(self, crt, key):
        with KmipConn(self.k.port, tls_ctx(self.dir, crt, key), GUARD) as c:
            it = c.call(request([op(OP_CREATE, create_aes())])).item(0)
            self.assertEqual(it.status, SUCCESS, it)
            uid = it.payload.find(UNIQUE_IDENTIFIER)
            it = c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, uid)])])).item(0)
            self.assertEqual(it.status, SUCCESS, it)
            self.assertEqual(len(key_bytes(it.payload)), 32)
        return uid

    def assert_refused(self, crt, key):
        with self.assertRaises(REFUSED):
            with KmipConn(self.k.port, tls_ctx(self.dir, crt, key), GUARD) as c:
                c.call(request([op(OP_DISCOVER_VERSIONS, [])]))

    def test_self_signed_leaf(self):
        crt, key = self.path("vc.crt"), self.path("vc.key")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                "/CN=vcenter-selfsigned", "-keyout", key, "-out", crt)
        self.assert_refused(crt, key)
        out, _ = self.keelctl("client", "add", "--cert", crt, "--name", "vc-leaf", "--json")
        self.assertEqual(json.loads(out)["role"], "kmip")
        self.create_and_get(crt, key)

    def test_signed_csr(self):
        csr, key, crt = self.path("vc.csr"), self.path("vc.key"), self.path("vc.crt")
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=vcenter-csr",
                "-keyout", key, "-out", csr)
        out, _ = self.keelctl("client", "sign-csr", "--csr", csr, "--out", crt)
        self.assertIn("vcenter-csr", out)
        ext = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-ext",
                              "extendedKeyUsage,basicConstraints"], capture_output=True,
                             check=True, timeout=GUARD).stdout.decode()
        self.assertIn("TLS Web Client Authentication", ext)
        self.assertIn("CA:FALSE", ext)
        self.create_and_get(crt, key)
        # A CSR whose signature does not verify is refused, and nothing is registered.
        with open(csr) as f:
            pem = f.read()
        lines = pem.splitlines()
        lines[-2] = lines[-2][:-4] + ("AAAA" if lines[-2][-4:] != "AAAA" else "BBBB")
        status, e = self.local("POST", "/v1/clients/csr", json.dumps({"csr": "\n".join(lines)}))
        self.assertEqual(status, 400, e)

    def test_trusted_root_ca(self):
        ca, ca_key = self.path("root.crt"), self.path("root.key")
        crt, key, csr = self.path("vc.crt"), self.path("vc.key"), self.path("vc.csr")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                "/CN=vCenter root CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca_key, "-out", ca)
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=vcenter-by-ca",
                "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-days", "30", "-out", crt)
        self.assert_refused(crt, key)
        self.assertEqual(self.https("GET", "/v1/status", None, crt, key)[0], 401)
        _, err = self.keelctl("client", "trust-ca", "--cert", crt, status=65)
        self.assertIn("not a CA", err)
        self.keelctl("client", "trust-ca", "--cert", ca, "--name", "vcenter-root")
        self.create_and_get(crt, key)
        status, e = self.https("GET", "/v1/status", None, crt, key)  # a KMIP client now
        self.assertEqual(status, 403)
        self.assertIn("KMIP client", e["error"])
        out, _ = self.keelctl("client", "list")
        self.assertRegex(out, r"vcenter-root +ca ")

    def test_issued_certificate_with_pykmip(self):
        from kmip.core import enums
        from kmip.pie.client import ProxyKmipClient
        crt, key = self.path("vc.crt"), self.path("vc.key")
        self.keelctl("client", "issue", "--name", "vcenter-issued", "--out-cert", crt,
                     "--out-key", key)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        with ProxyKmipClient(hostname="127.0.0.1", port=self.k.port, cert=crt, key=key,
                             ca=os.path.join(self.dir, "certs/ca.crt"),
                             ssl_version="PROTOCOL_TLS",
                             kmip_version=enums.KMIPVersion.KMIP_1_2) as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            self.assertEqual(len(c.get(uid).value), 32)
        self.keelctl("client", "issue", "--name", "vcenter-issued", "--out-cert", crt + "2",
                     "--out-key", key + "2", status=73)  # the name is taken

    def test_remove_refuses_then_destroys_keys(self):
        crt, key = self.path("vc.crt"), self.path("vc.key")
        self.keelctl("client", "issue", "--name", "doomed", "--out-cert", crt, "--out-key", key)
        uids = [self.create_and_get(crt, key) for _ in range(2)]
        _, err = self.keelctl("client", "remove", "doomed", status=73)
        self.assertIn("owns 2 keys", err)
        uids.append(self.create_and_get(crt, key))  # still registered
        with KmipConn(self.k.port, tls_ctx(self.dir, crt, key), GUARD) as c:  # Active: revoked first
            it = c.call(request([op(OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, uids[0])])])).item(0)
            self.assertEqual(it.status, SUCCESS, it)
        _, err = self.keelctl("client", "remove", "doomed", "--destroy-keys", status=64)
        self.assertIn("--yes", err)
        out, _ = self.keelctl("client", "remove", "doomed", "--destroy-keys", "--yes", "--json")
        self.assertEqual(json.loads(out)["keys_destroyed"], 3)
        self.assert_refused(crt, key)
        self.keelctl("client", "show", "doomed", status=66)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "data/keel.db"),
                             uri=True)
        try:
            rows = db.execute("SELECT state, blob IS NULL FROM objects WHERE uid IN (?, ?, ?)",
                              uids).fetchall()
        finally:
            db.close()
        self.assertEqual(rows, [(5, 1)] * 3)  # Destroyed, no key material


class CertTest(AdminCase):
    """What vCenter is given to trust Keel: its CA, its server certificate,
    renewed with the names vCenter reaches it by."""

    def peer_sans(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.dir, "certs/ca.crt"))
        ctx.load_cert_chain(os.path.join(self.dir, "certs/client.crt"),
                            os.path.join(self.dir, "certs/client.key"))
        with socket.create_connection(("127.0.0.1", port), GUARD) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return sorted(v for _, v in s.getpeercert()["subjectAltName"])

    def test_ca_export_and_server_cert_renew(self):
        out = os.path.join(self.tmp, "ca.pem")
        self.keelctl("ca", "export", "--out", out)
        with open(out) as a, open(os.path.join(self.dir, "certs/ca.crt")) as b:
            self.assertEqual(a.read().strip(), b.read().strip())
        shown = json.loads(self.keelctl("server-cert", "show", "--json")[0])
        self.assertIn("DNS:localhost", shown["sans"])
        self.assertEqual(self.peer_sans(self.k.port), ["0:0:0:0:0:0:0:1", "127.0.0.1", "localhost"])

        mark = self.k.mark()
        renewed = json.loads(self.keelctl("server-cert", "renew", "--san", "DNS:kms.example",
                                          "--san", "IP:10.1.2.3", "--json")[0])
        self.assertIn("DNS:kms.example", renewed["sans"])
        self.assertIn("IP:10.1.2.3", renewed["sans"])
        self.assertNotEqual(renewed["fingerprint"], shown["fingerprint"])
        self.k.wait_line(self.k.err, r"reloaded certificates and client registrations", mark)
        expect = ["0:0:0:0:0:0:0:1", "10.1.2.3", "127.0.0.1", "kms.example", "localhost"]
        self.assertEqual(self.peer_sans(self.k.port), expect)  # KMIP
        self.assertEqual(self.peer_sans(self.admin_port), expect)  # admin API
        out = os.path.join(self.tmp, "server.pem")
        self.keelctl("server-cert", "export", "--out", out)
        with open(out) as f:
            self.assertEqual(f.read(), renewed["certificate"])
        _, err = self.keelctl("server-cert", "renew", "--san", "kms.example", status=65)
        self.assertIn("DNS:name", err)


class ConfirmTest(AdminCase):
    def remove_on_tty(self, answer):
        """keelctl client remove --destroy-keys with a terminal on stdin, answered |answer|."""
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([KEELCTL, "client", "remove", "doomed", "--destroy-keys",
                                     "--config", self.conf], stdin=slave,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            os.write(master, answer.encode() + b"\n")
            out, err = proc.communicate(timeout=GUARD)
        finally:
            os.close(master)
            os.close(slave)
        return proc.returncode, err.decode()

    def test_remove_asks_on_a_terminal(self):
        crt, key = os.path.join(self.tmp, "d.crt"), os.path.join(self.tmp, "d.key")
        self.keelctl("client", "issue", "--name", "doomed", "--out-cert", crt, "--out-key", key)
        with KmipConn(self.k.port, tls_ctx(self.dir, crt, key), GUARD) as c:
            self.assertEqual(c.call(request([op(OP_CREATE, create_aes())])).item(0).status,
                             SUCCESS)
        rc, err = self.remove_on_tty("no")
        self.assertEqual(rc, 75, err)  # EX_TEMPFAIL: nothing changed
        self.assertIn("Destroy the 1 keys of client doomed?", err)
        self.assertEqual(self.local("GET", "/v1/clients/doomed")[1]["keys"], 1)
        rc, err = self.remove_on_tty("yes")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.local("GET", "/v1/clients/doomed")[0], 404)


class RoleTest(AdminCase):
    """HTTPS identities: admin, auditor, KMIP client, unknown, none."""

    def issue(self, name, role):
        crt, key = os.path.join(self.tmp, name + ".crt"), os.path.join(self.tmp, name + ".key")
        self.keelctl("client", "issue", "--name", name, "--role", role, "--out-cert", crt,
                     "--out-key", key)
        return crt, key

    def test_roles(self):
        admin, auditor = self.issue("ops", "admin"), self.issue("audit", "auditor")
        kmip = (os.path.join(self.dir, "certs/client.crt"),
                os.path.join(self.dir, "certs/client.key"))
        body = json.dumps({"name": "x"})
        self.assertEqual(self.https("GET", "/v1/clients", cert=admin[0], key=admin[1])[0], 200)
        self.assertEqual(self.https("GET", "/v1/clients", cert=auditor[0], key=auditor[1])[0],
                         200)
        status, e = self.https("POST", "/v1/clients/issue", body, *auditor)
        self.assertEqual(status, 403)
        self.assertIn("read-only", e["error"])
        status, e = self.https("GET", "/v1/status", None, *kmip)
        self.assertEqual(status, 403)
        self.assertIn("KMIP client", e["error"])
        self.assertEqual(self.https("GET", "/v1/status")[0], 401)
        # An admin certificate is not a KMIP client.
        with self.assertRaises(REFUSED):
            with KmipConn(self.k.port, tls_ctx(self.dir, *admin), GUARD) as c:
                c.call(request([op(OP_DISCOVER_VERSIONS, [])]))
        # keelctl over HTTPS with the admin identity.
        out, _ = self.keelctl("client", "list", "--admin-cert", admin[0], "--admin-key",
                              admin[1], "--cacert", os.path.join(self.dir, "certs/ca.crt"))
        self.assertRegex(out, r"audit +auditor ")

    def test_bad_input(self):
        admin = self.issue("ops", "admin")
        for send in (self.local, lambda m, p, b: self.https(m, p, b, *admin)):
            status, e = send("POST", "/v1/clients", "{not json")
            self.assertEqual(status, 400)
            self.assertIn("malformed JSON", e["error"])
            status, e = send("POST", "/v1/clients", json.dumps({"certificate": 5}))
            self.assertEqual((status, e["error"]), (400, 'field "certificate" must be a string'))
            status, e = send("POST", "/v1/clients", json.dumps({"certificate": "junk"}))
            self.assertEqual(status, 400)
            status, e = send("POST", "/v1/clients/issue", json.dumps({"name": "y",
                                                                      "role": "root"}))
            self.assertEqual(status, 400)
            self.assertIn("role", e["error"])
            # A path segment that is not UTF-8 (found by fuzz_admin): still a 404 that says why.
            status, e = send("PATCH", "/v1/clients/fu%C2zz", json.dumps({"name": "z"}))
            self.assertEqual((status, e["error"]), (404, "no client fu?zz"))
        before = self.local("GET", "/v1/clients")[1]
        self.assertEqual([c["name"] for c in before["clients"]], ["client", "ops"])


CODE = "4f2a9c-1be7d0-93aa41-0c5e6f"


class EnrolTest(AdminCase):
    """The first administrator (issue 9): keeld --dev given what the appliance's
    first boot gives it, admin.certificates_dir and admin.enrolment_file."""

    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.dir, "admins"))
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=first",
                "-keyout", os.path.join(self.tmp, "first.key"),
                "-out", os.path.join(self.dir, "admins", "first.pem"))
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write(conf.replace('socket = "admin.sock";', 'socket = "admin.sock"; '
                                 'certificates_dir = "admins"; enrolment_file = "enrolment";'))
        self.offer(time.time())
        # A fresh store, as on an appliance's first start: the registry is seeded again.
        for name in os.listdir(os.path.join(self.dir, "data")):
            os.unlink(os.path.join(self.dir, "data", name))
        self.restart()

    def offer(self, now):
        with open(os.path.join(self.dir, "enrolment"), "w") as f:
            f.write(keel_setup.enrolment_file_text(CODE, now))

    def restart(self):
        self.assertEqual(self.k.stop(), 0)
        self.k = Keeld(self.dir)
        self.k.ready()

    def enrol(self, code, out, status=0):
        r = subprocess.run([KEELCTL, "enrol", "--server", f"127.0.0.1:{self.admin_port}",
                            "--cacert", os.path.join(self.dir, "certs/ca.crt"), "--code", "-",
                            "--name", os.path.basename(out), "--out", out],
                           input=code + "\n", capture_output=True, text=True, timeout=GUARD)
        self.assertEqual(r.returncode, status, r.stderr)
        return r.stderr

    def post(self, code):
        csr = os.path.join(self.tmp, "x.csr")
        if not os.path.exists(csr):
            openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
                    "-keyout", os.path.join(self.tmp, "x.key"), "-out", csr)
        with open(csr) as f:
            return self.https("POST", "/v1/enrol", json.dumps({"code": code, "csr": f.read()}))

    def test_code_works_once(self):
        clients = {c["name"]: c["role"] for c in self.local("GET", "/v1/clients")[1]["clients"]}
        self.assertEqual(clients["first"], "admin")  # admin.certificates_dir, registered
        out = os.path.join(self.tmp, "ops")
        err = self.enrol("not-the-code-at-all", out, status=77)
        self.assertIn("wrong enrolment code (4 tries left)", err)
        self.assertFalse(os.path.exists(out + ".key"))
        self.enrol(CODE, out)
        self.assertEqual(os.stat(out + ".key").st_mode & 0o777, 0o600)
        err = self.enrol(CODE, os.path.join(self.tmp, "again"), status=77)
        self.assertIn("no enrolment code is pending", err)
        # The certificate is an administrator's, from a machine without keeld.conf.
        r = subprocess.run([KEELCTL, "--json", "status", "--url",
                            f"https://127.0.0.1:{self.admin_port}", "--cacert",
                            os.path.join(self.dir, "certs/ca.crt"), "--cert", out + ".crt",
                            "--key", out + ".key", "--config", "/nonexistent/keeld.conf"],
                           capture_output=True, text=True, timeout=GUARD)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["token"]["label"], "keel-dev")
        status, c = self.https("GET", "/v1/clients/ops", cert=out + ".crt", key=out + ".key")
        self.assertEqual((status, c["role"]), (200, "admin"))
        self.assertIn("Keel dev CA", c["issuer"])
        # A restart offers the same file again: used stays used.
        self.restart()
        status, e = self.post(CODE)
        self.assertEqual(status, 403, e)
        self.assertIn("no enrolment code is pending", e["error"])
        self.assertNotIn(CODE, "".join(line for line in self.k.err if line))

    def test_wrong_codes_lock_and_codes_expire(self):
        for left in (4, 3, 2, 1, 0):
            status, e = self.post("wrong-" + CODE)
            self.assertEqual((status, e["error"]),
                             (403, f"wrong enrolment code ({left} tries left)"))
        status, e = self.post(CODE)
        self.assertEqual(status, 403)
        self.assertIn("locked after 5 wrong codes", e["error"])
        self.assertEqual(self.post("")[0], 400)  # bad input: not counted, nothing changes
        # A new code, made 8 days ago: expired after 7.
        self.offer(time.time() - 8 * 86400)
        self.restart()
        status, e = self.post(CODE)
        self.assertEqual((status, e["error"]), (403, "the enrolment code has expired"))
        names = [c["name"] for c in self.local("GET", "/v1/clients")[1]["clients"]]
        self.assertNotIn("x", names)


if __name__ == "__main__":
    unittest.main()
