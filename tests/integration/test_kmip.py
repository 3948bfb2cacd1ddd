#!/usr/bin/python3
"""Integration tests of issue 4: keeld --dev on loopback, KMIP over real mutual
TLS, driven by our own TTLV client (kmipwire.py), the captured vCenter 7.0.3
session ($KEEL_VECTORS/vcenter) and PyKMIP's client (Debian's python3-pykmip).

Synchronisation is on events only: keeld's READY line and log lines, process
exits, connections closing. GUARD timeouts only fail a stuck test.

Run one test:  test_kmip.py VCenterTest.test_replay_session
Environment:   KEEL_KEELD, KEEL_KEELCTL, KEEL_VECTORS (set by CTest).
"""
import concurrent.futures
import hashlib
import hmac
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import unittest

from kmipwire import (ATTRIBUTE, ATTRIBUTE_NAME, ATTRIBUTE_VALUE, BATCH_COUNT, BYTES,
                      CRYPTOGRAPHIC_ALGORITHM, CRYPTOGRAPHIC_LENGTH, INTEGER, INVALID_FIELD,
                      INVALID_MESSAGE, ITEM_NOT_FOUND, KEY_BLOCK, KEY_FORMAT_TYPE, KmipConn,
                      OBJECT_TYPE, OP_ACTIVATE, OP_ADD_ATTRIBUTE, OP_CREATE, OP_DESTROY,
                      OP_DISCOVER_VERSIONS, OP_GET, OP_GET_ATTRIBUTES, OP_LOCATE, OP_QUERY,
                      OPERATION_NOT_SUPPORTED, PROTOCOL_VERSION, PROTOCOL_VERSION_MAJOR,
                      PROTOCOL_VERSION_MINOR, QUERY_FUNCTION, REQUEST_PAYLOAD, RESPONSE_HEADER,
                      STATE_ACTIVE, STATE_PRE_ACTIVE, STRUCTURE, SUCCESS, SYMMETRIC_KEY, TEXT,
                      TIME_STAMP, UNIQUE_BATCH_ITEM_ID, UNIQUE_IDENTIFIER, VENDOR_IDENTIFICATION,
                      B, E, I, S, T, attribute, attributes, create_aes, decode, encode, key_bytes, op,
                      reencode, request, substitute)
from test_dev import GUARD, KEELCTL, KEELD, Keeld, client_ctx
from test_server import wait_closed

VECTORS = os.environ.get("KEEL_VECTORS", "")
SESSION = os.path.join(VECTORS, "vcenter", "vcenter-7.0.3-session.txt")
REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError)


def load_session(path):
    """{name: decoded request} from the vectors file (blocks "name:" then hex)."""
    blocks, name = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#") or not line:
                name = None if not line else name
                continue
            if line.endswith(":"):
                name = line[:-1]
                blocks[name] = ""
            elif name is not None:
                blocks[name] += line
    out = {}
    for k, v in blocks.items():
        msg, end = decode(bytes.fromhex(v))
        assert end == len(v) // 2, k
        out[k] = msg
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class KeeldCase(unittest.TestCase):
    """One keeld --dev appliance per test, in a fresh directory (test_dev's
    Keeld fixture)."""

    def setUp(self):
        if not (KEELD and KEELCTL):
            self.skipTest("KEEL_KEELD and KEEL_KEELCTL not set")
        self.tmp = tempfile.mkdtemp(prefix="keel-kmip-test-")
        self.dir = os.path.join(self.tmp, "dev")
        self.procs = []
        self.k = self.start()
        self.ctx = client_ctx(self.dir)

    def tearDown(self):
        for p in self.procs:
            p.end()
            for f in (p.proc.stdout, p.proc.stderr):
                f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        k = Keeld(self.dir)
        self.procs.append(k)
        return k.ready()

    def conn(self, ctx=None):
        return KmipConn(self.k.port, ctx or self.ctx, GUARD)

    def ok(self, resp, n=1):
        """Asserts a 1.x response of n successful items; returns them."""
        items = resp.items()
        self.assertEqual(len(items), n, items)
        for it in items:
            self.assertEqual(it.status, SUCCESS, it)
        return items

    def call1(self, c, operation, payload, status=SUCCESS):
        it = c.call(request([op(operation, payload)])).item(0)
        self.assertEqual(it.status, status, it)
        return it

    def create(self, c, **kw):
        return self.call1(c, OP_CREATE, create_aes(**kw)).payload.find(UNIQUE_IDENTIFIER)

    def assert_serves(self):
        """A new connection gets Discover Versions answered."""
        with self.conn() as c:
            self.call1(c, OP_DISCOVER_VERSIONS, [])


# -- vCenter ------------------------------------------------------------------------------------

class VCenter:
    """One simulated vCenter 7.0.3 replaying the captured session in the
    VCENTER.md §1 connection pattern; check() is a TestCase's assertion set."""

    def __init__(self, t, port, ctx, session):
        self.t, self.port, self.ctx, self.s = t, port, ctx, session

    def connect(self):
        return KmipConn(self.port, self.ctx, GUARD)

    def call(self, c, msg, uid=None):
        """Sends a captured request (UID substituted), checks the §5 header and
        batch rules, returns the response items."""
        if uid is not None:
            msg = substitute(msg, UNIQUE_IDENTIFIER, uid)
        resp = c.call(reencode(msg))
        t = self.t
        hdr = resp.get(RESPONSE_HEADER)
        t.assertIsNotNone(hdr)
        t.assertEqual((hdr.find(PROTOCOL_VERSION, PROTOCOL_VERSION_MAJOR),
                       hdr.find(PROTOCOL_VERSION, PROTOCOL_VERSION_MINOR)), (1, 1))  # §5.4
        t.assertIsNotNone(hdr.find(TIME_STAMP))  # §5.4
        sent = msg.items()
        got = resp.items()
        t.assertEqual(hdr.find(BATCH_COUNT), len(sent))
        t.assertEqual(len(got), len(sent))  # §5.8
        for q, a in zip(sent, got):  # in order, ids echoed (§5.7)
            t.assertEqual(a.operation, q.operation)
            t.assertEqual(a.batch_id, q.batch_id)
            t.assertEqual(a.status, SUCCESS, a)
        return got

    def get_attr(self, c, uid, name):
        msg = substitute(self.s["get-attributes"], ATTRIBUTE_NAME, name)
        return attributes(self.call(c, msg, uid)[0].payload).get(name)

    def run(self):
        t, s = self.t, self.s
        dv = s["discover-versions"]
        # Health check: an mTLS connection closed with no message (§5.3), then
        # Discover Versions without and with a batch id on a new one.
        self.connect().close()
        with self.connect() as c:
            versions = self.call(c, dv)[0].payload.all(PROTOCOL_VERSION)
            t.assertIn([1, 1], [[v.find(PROTOCOL_VERSION_MAJOR), v.find(PROTOCOL_VERSION_MINOR)]
                                for v in versions])  # §5.5
            self.call(c, s["discover-versions-with-batch-id"])
        # Add KMS: Query Server Information (§5.9).
        with self.connect() as c:
            self.call(c, dv)
            t.assertTrue(self.call(c, s["query"])[0].payload.find(VENDOR_IDENTIFICATION))
        # Create (§5.10): Object Type and UID only.
        with self.connect() as c:
            self.call(c, dv)
            p = self.call(c, s["create"])[0].payload
            t.assertEqual([x.tag for x in p.value], [OBJECT_TYPE, UNIQUE_IDENTIFIER])
            t.assertEqual(p.find(OBJECT_TYPE), 2)
            uid = p.find(UNIQUE_IDENTIFIER)
        # Tagging: absent x-* attributes answer Success with the UID only (§5.11),
        # then the 3-item AddAttribute batch.
        with self.connect() as c:
            self.call(c, dv)
            for name in ("x-Product_Version", "x-Vendor", "x-Product"):
                t.assertIsNone(self.get_attr(c, uid, name))
            items = self.call(c, s["add-attribute"], uid)
            t.assertEqual([it.batch_id for it in items],
                          [b"QLKC\x01\0\0\0", b"QLKC\x02\0\0\0", b"QLKC\x03\0\0\0"])
        # Fetch and activate (§2.3, §5.13-15).
        with self.connect() as c:
            self.call(c, dv)
            p = self.call(c, s["get"], uid)[0].payload
            t.assertEqual(p.find(UNIQUE_IDENTIFIER), uid)
            t.assertEqual(p.find(SYMMETRIC_KEY, KEY_BLOCK, KEY_FORMAT_TYPE), 1)  # Raw
            t.assertEqual(len(key_bytes(p)), 32)
            t.assertEqual(p.find(SYMMETRIC_KEY, KEY_BLOCK, CRYPTOGRAPHIC_ALGORITHM), 3)
            t.assertEqual(p.find(SYMMETRIC_KEY, KEY_BLOCK, CRYPTOGRAPHIC_LENGTH), 256)
            state = s["get-attributes-state"]
            t.assertEqual(attributes(self.call(c, state, uid)[0].payload)["State"],
                          [STATE_PRE_ACTIVE])
            self.call(c, s["activate"], uid)
            t.assertEqual(attributes(self.call(c, state, uid)[0].payload)["State"],
                          [STATE_ACTIVE])
            # The x-* tags are stored (§5.12).
            t.assertEqual(self.get_attr(c, uid, "x-Vendor"), ["VMware, Inc."])
            t.assertEqual(self.get_attr(c, uid, "x-Product_Version"),
                          ["7.0.3 build-19480866"])
            self.call(c, s["add-attribute-vm-tags"], uid)
            t.assertEqual(self.get_attr(c, uid, "x-Component"), ["Virtual Machine"])
        # An unknown UID: Item Not Found (§5.22).
        with self.connect() as c:
            self.call(c, dv)
            msg = reencode(substitute(s["get"], UNIQUE_IDENTIFIER, "no-such-key-" + uid))
            it = c.call(msg).item(0)
            t.assertEqual((it.status, it.reason), (1, ITEM_NOT_FOUND), it)
            t.assertEqual(it.batch_id, b"QLKC\x01\0\0\0")
        return uid


class VCenterTest(KeeldCase):
    def setUp(self):
        if not os.path.exists(SESSION):
            print("SKIPPED: vCenter session vectors not found at %r (KEEL_VECTORS)" % SESSION,
                  file=sys.stderr)
            self.skipTest("no vCenter vectors at %r" % SESSION)
        self.session = load_session(SESSION)
        super().setUp()

    def test_replay_session(self):
        VCenter(self, self.k.port, self.ctx, self.session).run()
        self.assertEqual(self.k.proc.poll(), None)
        # The connection closed with no message is not an error (§5.3).
        self.assertNotRegex(self.k.stderr_text(), r"(?m)^keeld: (error|warning):")

    def test_50_concurrent_vcenters(self):
        def one(_):
            return VCenter(self, self.k.port, client_ctx(self.dir), self.session).run()

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            uids = list(pool.map(one, range(50)))
        self.assertEqual(len(set(uids)), 50)
        self.assertNotRegex(self.k.stderr_text(), r"(?m)^keeld: (error|warning):")


# -- PyKMIP -------------------------------------------------------------------------------------

class PyKmipTest(KeeldCase):
    def client(self):
        from kmip.core import enums
        from kmip.pie.client import ProxyKmipClient
        certs = os.path.join(self.dir, "certs")
        return ProxyKmipClient(hostname="127.0.0.1", port=self.k.port,
                               cert=os.path.join(certs, "client.crt"),
                               key=os.path.join(certs, "client.key"),
                               ca=os.path.join(certs, "ca.crt"), ssl_version="PROTOCOL_TLS",
                               kmip_version=enums.KMIPVersion.KMIP_1_2)

    def test_symmetric_key_lifecycle(self):
        from kmip.core import enums
        from kmip.pie import exceptions, objects
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="pykmip-key-1",
                           cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                     enums.CryptographicUsageMask.DECRYPT])
            other = c.create(enums.CryptographicAlgorithm.AES, 128, name="pykmip-key-2")
            key = c.get(uid)
            self.assertIsInstance(key, objects.SymmetricKey)
            self.assertEqual(key.cryptographic_algorithm, enums.CryptographicAlgorithm.AES)
            self.assertEqual(len(key.value), 32)
            self.assertEqual(len(c.get(other).value), 16)
            _, attrs = c.get_attributes(uid, ["State", "Cryptographic Length", "Name"])
            got = {a.attribute_name.value: a.attribute_value for a in attrs}
            self.assertEqual(got["State"].value, enums.State.PRE_ACTIVE)
            self.assertEqual(got["Cryptographic Length"].value, 256)
            self.assertEqual(got["Name"].name_value.value, "pykmip-key-1")
            self.assertIn("State", c.get_attribute_list(uid))
            self.assertEqual(c.locate(attributes=[self.name_attr("pykmip-key-1")]), [uid])
            self.assertEqual(c.locate(attributes=[self.name_attr("pykmip-key-2")]), [other])
            self.assertEqual(c.locate(attributes=[self.name_attr("no-such-name")]), [])
            c.activate(uid)
            _, attrs = c.get_attributes(uid, ["State"])
            self.assertEqual(attrs[0].attribute_value.value, enums.State.ACTIVE)
            with self.assertRaises(exceptions.KmipOperationFailure):
                c.destroy(uid)  # an Active key is revoked first
            c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
            _, attrs = c.get_attributes(uid, ["State"])
            self.assertEqual(attrs[0].attribute_value.value, enums.State.DEACTIVATED)
            c.destroy(uid)
            with self.assertRaises(exceptions.KmipOperationFailure):
                c.get(uid)
            c.destroy(other)  # never activated: destroyed directly
            with self.assertRaises(exceptions.KmipOperationFailure):
                c.get(other)

    def lifecycle_end(self, c, uid):
        """Activate, revoke, destroy; afterwards Get fails."""
        from kmip.core import enums
        from kmip.pie import exceptions
        c.activate(uid)
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        c.destroy(uid)
        with self.assertRaises(exceptions.KmipOperationFailure):
            c.get(uid)

    def test_key_pair_lifecycle(self):
        from kmip.core import enums
        from kmip.pie import objects
        with self.client() as c:
            pub, priv = c.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048,
                                          public_name="pykmip-pub", private_name="pykmip-priv")
            self.assertNotEqual(pub, priv)
            pk, sk = c.get(pub), c.get(priv)
            self.assertIsInstance(pk, objects.PublicKey)
            self.assertIsInstance(sk, objects.PrivateKey)
            self.assertEqual(pk.cryptographic_length, 2048)
            self.assertEqual(sk.cryptographic_algorithm, enums.CryptographicAlgorithm.RSA)
            self.assertEqual(c.locate(attributes=[self.name_attr("pykmip-priv")]), [priv])
            for uid in (priv, pub):
                self.lifecycle_end(c, uid)

    def test_registered_objects_lifecycle(self):
        from kmip.core import enums
        from kmip.pie import objects
        with open(os.path.join(self.dir, "certs/client.crt")) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        secret = objects.SecretData(b"vcenter-password", enums.SecretDataType.PASSWORD,
                                    name="pykmip-secret")
        cert = objects.X509Certificate(der, name="pykmip-cert")
        sym = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, bytes(range(16)),
                                   name="pykmip-registered-key")
        with self.client() as c:
            uids = [c.register(o) for o in (secret, cert, sym)]
            got = [c.get(u) for u in uids]
            self.assertIsInstance(got[0], objects.SecretData)
            self.assertEqual(got[0].value, b"vcenter-password")
            self.assertIsInstance(got[1], objects.X509Certificate)
            self.assertEqual(got[1].value, der)
            self.assertIsInstance(got[2], objects.SymmetricKey)
            self.assertEqual(got[2].value, bytes(range(16)))
            self.assertEqual(c.locate(attributes=[self.name_attr("pykmip-cert")]), [uids[1]])
            for uid in uids:
                self.lifecycle_end(c, uid)

    def test_encrypt_decrypt_mac(self):
        from kmip.core import enums
        from kmip.pie import objects
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256,
                           cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                     enums.CryptographicUsageMask.DECRYPT])
            c.activate(uid)
            params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
                      "block_cipher_mode": enums.BlockCipherMode.CBC,
                      "padding_method": enums.PaddingMethod.PKCS5}
            iv = bytes(16)
            plain = b"attack at dawn, and bring the keys"
            ct, _ = c.encrypt(plain, uid=uid, cryptographic_parameters=params,
                              iv_counter_nonce=iv)
            self.assertNotEqual(ct, plain)
            self.assertEqual(len(ct), 48)
            self.assertEqual(c.decrypt(ct, uid=uid, cryptographic_parameters=params,
                                       iv_counter_nonce=iv), plain)
            # Create makes AES keys only: an HMAC key is registered.
            mac_key = c.register(objects.SymmetricKey(
                enums.CryptographicAlgorithm.HMAC_SHA256, 256, bytes(32),
                masks=[enums.CryptographicUsageMask.MAC_GENERATE,
                       enums.CryptographicUsageMask.MAC_VERIFY]))
            c.activate(mac_key)
            got_uid, mac = c.mac(b"data", uid=mac_key,
                                 algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
            self.assertEqual(got_uid, mac_key)
            self.assertEqual(mac, hmac.new(bytes(32), b"data", hashlib.sha256).digest())

    @staticmethod
    def name_attr(name):
        from kmip.core import enums
        from kmip.core.factories import attributes as af
        return af.AttributeFactory().create_attribute(enums.AttributeType.NAME, name)


# -- persistence --------------------------------------------------------------------------------

class PersistenceTest(KeeldCase):
    N, BATCH = 1000, 50
    ATTRS = {"Unique Identifier", "Object Type", "State", "Initial Date", "Last Change Date",
             "Name", "Cryptographic Algorithm", "Cryptographic Length",
             "Cryptographic Usage Mask"}

    def batched(self, c, operation, payloads, size=BATCH):
        out = []
        for i in range(0, len(payloads), size):
            part = payloads[i:i + size]
            out += [it.payload for it in
                    self.ok(c.call(request([op(operation, p) for p in part])), len(part))]
        return out

    def snapshot(self, c, uids):
        keys = [key_bytes(p) for p in
                self.batched(c, OP_GET, [[T(UNIQUE_IDENTIFIER, u)] for u in uids])]
        attrs = [attributes(p) for p in
                 self.batched(c, OP_GET_ATTRIBUTES, [[T(UNIQUE_IDENTIFIER, u)] for u in uids])]
        return keys, attrs

    def test_1000_keys_survive_kill9(self):
        with self.conn() as c:
            uids = [p.find(UNIQUE_IDENTIFIER) for p in
                    self.batched(c, OP_CREATE, [create_aes(name="persist-%d" % i)
                                                for i in range(self.N)])]
            self.assertEqual(len(set(uids)), self.N)
            keys, attrs = self.snapshot(c, uids)
        self.assertTrue(all(len(k) == 32 for k in keys))
        self.assertEqual(len(set(keys)), self.N)
        self.assertEqual(attrs[7]["Name"][0][0][1], "persist-7")
        self.assertLessEqual(self.ATTRS, set(attrs[7]))
        self.assertEqual([a["Unique Identifier"] for a in attrs], [[u] for u in uids])
        self.k.kill()  # SIGKILL, and reaped
        self.assertEqual(self.k.proc.returncode, -signal.SIGKILL)
        self.k = self.start()
        with self.conn() as c:
            keys2, attrs2 = self.snapshot(c, uids)
        self.assertEqual(keys2, keys)
        self.assertEqual(attrs2, attrs)


# -- isolation ----------------------------------------------------------------------------------

def make_cert(tmp, name, ca_crt=None, ca_key=None):
    """A client certificate (EKU clientAuth) signed by ca_crt/ca_key, or a
    self-signed CA when those are None; returns (crt, key) paths."""
    crt, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
           "-days", "2", "-keyout", key, "-out", crt]
    if ca_crt:
        cmd += ["-CA", ca_crt, "-CAkey", ca_key, "-addext", "extendedKeyUsage=clientAuth"]
    else:
        cmd += ["-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=GUARD)
    return crt, key


class IsolationTest(KeeldCase):
    def dev_cert(self, name):
        return make_cert(self.tmp, name, os.path.join(self.dir, "certs/ca.crt"),
                         os.path.join(self.dir, "secrets/ca.key"))

    def ctx_for(self, crt, key, **kw):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.dir, "certs/ca.crt"))
        if kw.get("tls_max"):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = kw["tls_max"]
        if crt:
            ctx.load_cert_chain(crt, key)
        return ctx

    def test_second_client_cannot_touch_first_clients_key(self):
        crt, key = self.dev_cert("second-client")
        subprocess.run([KEELCTL, "client", "add", "--cert", crt, "--config",
                        os.path.join(self.dir, "keeld.conf")],
                       check=True, capture_output=True, timeout=GUARD)
        with self.conn() as c:
            uid = self.create(c, name="first-clients-key")
            before = key_bytes(self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload)
        name = S(ATTRIBUTE, T(ATTRIBUTE_NAME, "Name"),
                 S(ATTRIBUTE_VALUE, T(0x420055, "first-clients-key"), E(0x420054, 1)))
        with self.conn(self.ctx_for(crt, key)) as c2:
            own = self.create(c2, name="second-clients-key")
            found = self.call1(c2, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER)
            self.assertEqual([u.value for u in found], [own])
            self.assertEqual(self.call1(c2, OP_LOCATE, [name]).payload.all(UNIQUE_IDENTIFIER), [])
            for operation, payload in (
                    (OP_GET, [T(UNIQUE_IDENTIFIER, uid)]),
                    (OP_GET_ATTRIBUTES, [T(UNIQUE_IDENTIFIER, uid)]),
                    (OP_ADD_ATTRIBUTE, [T(UNIQUE_IDENTIFIER, uid),
                                        attribute("x-Stolen", TEXT, "yes")]),
                    (OP_ACTIVATE, [T(UNIQUE_IDENTIFIER, uid)]),
                    (OP_DESTROY, [T(UNIQUE_IDENTIFIER, uid)])):
                it = self.call1(c2, operation, payload, status=1)
                self.assertEqual(it.reason, ITEM_NOT_FOUND, (operation, it))
        with self.conn() as c:  # untouched
            p = self.call1(c, OP_GET, [T(UNIQUE_IDENTIFIER, uid)]).payload
            self.assertEqual(key_bytes(p), before)
            a = attributes(self.call1(c, OP_GET_ATTRIBUTES, [T(UNIQUE_IDENTIFIER, uid)]).payload)
            self.assertNotIn("x-Stolen", a)
            self.assertEqual(a["State"], [STATE_PRE_ACTIVE])
            found = self.call1(c, OP_LOCATE, []).payload.all(UNIQUE_IDENTIFIER)
            self.assertEqual([u.value for u in found], [uid])

    def assert_refused(self, ctx):
        try:
            s = socket.create_connection(("127.0.0.1", self.k.port), GUARD)
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        except REFUSED:
            pass
        else:
            with s:  # TLS 1.3: the client learns it on its first read
                try:
                    s.sendall(encode(0x420078, STRUCTURE, []))
                except REFUSED:
                    pass
                self.assertEqual(wait_closed(s), b"")
        self.assert_serves()

    def test_handshake_refusals(self):
        crt, key = self.dev_cert("unregistered")
        ca_crt, ca_key = make_cert(self.tmp, "other-ca")
        ocrt, okey = make_cert(self.tmp, "other-ca-client", ca_crt, ca_key)
        good_crt = os.path.join(self.dir, "certs/client.crt")
        good_key = os.path.join(self.dir, "certs/client.key")
        cases = {
            "unregistered": self.ctx_for(crt, key),
            "no certificate": self.ctx_for(None, None),
            "TLS 1.1": self.ctx_for(good_crt, good_key, tls_max=ssl.TLSVersion.TLSv1_1),
            "TLS 1.0": self.ctx_for(good_crt, good_key, tls_max=ssl.TLSVersion.TLSv1),
            "other CA": self.ctx_for(ocrt, okey),
        }
        for what, ctx in cases.items():
            with self.subTest(what):
                mark = self.k.mark()
                self.assert_refused(ctx)
                self.k.wait_line(self.k.err, r"(handshake failed|not registered)", mark)


# -- bad input ----------------------------------------------------------------------------------

def header(count=1, version=(1, 1)):
    return S(0x420077, S(PROTOCOL_VERSION, I(PROTOCOL_VERSION_MAJOR, version[0]),
                         I(PROTOCOL_VERSION_MINOR, version[1])), I(BATCH_COUNT, count))


def raw_frame(tag, typ, body, length=None):
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(
        ">I", len(body) if length is None else length) + body


def nested(depth=500):
    inner = b""
    for _ in range(depth):
        inner = raw_frame(ATTRIBUTE, STRUCTURE, inner)
    return inner


def depth_bomb_in_value():
    """Nesting where a structure is allowed (a custom attribute's value)."""
    return request([op(OP_ADD_ATTRIBUTE, [T(UNIQUE_IDENTIFIER, "x"), S(
        ATTRIBUTE, T(ATTRIBUTE_NAME, "x-Bomb"), raw_frame(ATTRIBUTE_VALUE, STRUCTURE, nested()))])])


def truncated_inside():
    """The outer length matches the bytes sent, an inner item claims more."""
    good = request([op(OP_GET, [T(UNIQUE_IDENTIFIER, "x")])])
    body = good[8:-16]
    return raw_frame(0x420078, STRUCTURE, body)


# (name, message, expected result reason or None for a closed connection)
BAD_ANSWERED = [
    ("truncated inside", truncated_inside(), INVALID_MESSAGE),
    ("depth bomb in an attribute value", depth_bomb_in_value(), INVALID_FIELD),
    ("depth bomb as the message", raw_frame(0x420078, STRUCTURE, nested()), INVALID_MESSAGE),
    ("response, not a request",
     S(0x42007B, S(0x42007A, S(PROTOCOL_VERSION, I(PROTOCOL_VERSION_MAJOR, 1),
                               I(PROTOCOL_VERSION_MINOR, 1)), I(BATCH_COUNT, 0))),
     INVALID_MESSAGE),
    ("header only", S(0x420078, header(0)), INVALID_MESSAGE),
    ("unknown operation", request([op(0xBEEF, [])]), OPERATION_NOT_SUPPORTED),
    ("unimplemented operation (Poll)", request([op(0x1A, [B(0x420006, b"\1\2\3\4")])]),
     OPERATION_NOT_SUPPORTED),
    ("missing Object Type", request([op(OP_CREATE, create_aes()[1:])]), INVALID_FIELD),
    ("missing batch count", S(0x420078, S(0x420077, S(
        PROTOCOL_VERSION, I(PROTOCOL_VERSION_MAJOR, 1), I(PROTOCOL_VERSION_MINOR, 1))),
        S(0x42000F, E(0x42005C, OP_DISCOVER_VERSIONS), S(REQUEST_PAYLOAD))), INVALID_MESSAGE),
    ("wrong type: UID as integer", request([op(OP_GET, [I(UNIQUE_IDENTIFIER, 5)])]),
     INVALID_FIELD),
    ("wrong type: batch count as text", S(0x420078, S(0x420077, S(
        PROTOCOL_VERSION, I(PROTOCOL_VERSION_MAJOR, 1), I(PROTOCOL_VERSION_MINOR, 1)),
        T(BATCH_COUNT, "1")), S(0x42000F, E(0x42005C, OP_DISCOVER_VERSIONS),
                                S(REQUEST_PAYLOAD))), INVALID_MESSAGE),
    ("wrong type: operation as text", S(0x420078, header(), S(
        0x42000F, T(0x42005C, "Get"), S(REQUEST_PAYLOAD))), INVALID_FIELD),
]

BAD_CLOSED = [
    ("length over the maximum", raw_frame(0x420078, STRUCTURE, b"", length=0x7FFFFFF0)),
    ("garbage", b"GET / HTTP/1.1\r\nHost: keel\r\n\r\n"),
    ("not a structure", raw_frame(0x420078, TEXT, b"abcdefgh")),
]


def record_types(data):
    """The content types of the TLS records in data (0x15 alert, 0x17 data)."""
    types, pos = set(), 0
    while pos + 5 <= len(data):
        types.add(data[pos])
        pos += 5 + struct.unpack(">H", data[pos + 3:pos + 5])[0]
    return types


class BadInputTest(KeeldCase):
    def setUp(self):
        # Under ASan (CI's sanitizer run), freed memory waits in a quarantine
        # that grows RSS by design; without it RSS measures what keeld keeps.
        asan = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
            "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
        super().setUp()
    def check_answer(self, c, name, msg, reason):
        resp = c.call(msg)
        it = resp.item(0)
        self.assertEqual((it.status, it.reason), (1, reason), (name, it))

    def test_each_bad_input(self):
        for name, msg, reason in BAD_ANSWERED:
            with self.subTest(name):
                with self.conn() as c:
                    self.check_answer(c, name, msg, reason)
                    self.call1(c, OP_DISCOVER_VERSIONS, [])  # the connection carries on
                self.assert_serves()
        for name, msg in BAD_CLOSED:
            with self.subTest(name):
                with self.conn() as c:
                    c.send(msg)
                    self.assertEqual(wait_closed(c.sock), b"")
                self.assert_serves()
        with self.subTest("truncated frame"):
            # TLS 1.2, so that nothing but an answer or an alert can follow.
            ctx = client_ctx(self.dir)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with self.conn(ctx) as c:
                good = request([op(OP_DISCOVER_VERSIONS, [])])
                c.send(good[:len(good) // 2])
                c.sock.shutdown(socket.SHUT_WR)  # EOF in mid-frame; the socket is raw now
                self.assertEqual(record_types(wait_closed(c.sock)) - {0x15}, set())
            self.assert_serves()
        self.assertIsNone(self.k.proc.poll())

    def test_memory_after_2000_bad_requests(self):
        msgs = [m for _, m, _ in BAD_ANSWERED]

        def burst(c, n, start):
            for i in range(start, start + n):
                it = c.call(msgs[i % len(msgs)]).item(0)
                self.assertEqual(it.status, 1)

        with self.conn() as c:
            burst(c, 200, 0)
            first = rss_kib(self.k.proc.pid)
            burst(c, 1800, 200)
            after = rss_kib(self.k.proc.pid)
            self.call1(c, OP_DISCOVER_VERSIONS, [])
        print("keeld VmRSS after 200 bad requests %d kB, after 2000 %d kB" % (first, after),
              file=sys.stderr)
        self.assertLess(after - first, 20 * 1024, "VmRSS %d kB -> %d kB" % (first, after))


# -- engine regressions found by these tests --------------------------------------------------

class RegressionTest(KeeldCase):
    def test_get_attributes_unique_identifier_is_the_uid(self):
        # It was answered from op_get_attributes's freed local (fixed in 06e0ccc).
        with self.conn() as c:
            uid = self.create(c)
            for names in ([], [T(ATTRIBUTE_NAME, "Unique Identifier")]):
                p = self.call1(c, OP_GET_ATTRIBUTES, [T(UNIQUE_IDENTIFIER, uid)] + names).payload
                self.assertEqual(attributes(p)["Unique Identifier"], [uid])

    def test_64_gets_in_one_batch(self):
        # The 9th Get of a message failed: 8 plaintext copies at most (fixed in bb06b87).
        with self.conn() as c:
            uids = [self.create(c) for _ in range(64)]  # limits.max_batch_items
            items = self.ok(c.call(request([op(OP_GET, [T(UNIQUE_IDENTIFIER, u)])
                                            for u in uids])), 64)
            self.assertEqual([len(key_bytes(it.payload)) for it in items], [32] * 64)


if __name__ == "__main__":
    unittest.main()
