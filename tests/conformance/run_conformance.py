#!/usr/bin/python3
"""OASIS KMIP 1.0-1.4 XML test cases replayed against a live keeld --dev.

Each test-case file runs on its own TLS connection with its own client
certificate (issued here by the dev CA, which the run trusts with keelctl
client trust-ca): keeld's ownership rules give every file an empty object space
without a keeld per file. The SASED files, one scenario in three files, share
an identity and run in order. Requests go out in file order, with the protocol
version the file sets; each response is compared with the expected one
structurally, ignoring only what must differ:

  - placeholders ($UNIQUE_IDENTIFIER_n, $IV_COUNTER_NONCE, ...): the first
    value seen in a response is learnt and must be the same wherever the
    placeholder appears again; later requests carry the learnt value;
  - $NOW (+/-n) and the header TimeStamp; a date the server chose (one that
    no request of the file sent);
  - bytes the server drew at random: in files that make objects on the server
    (Create, Create Key Pair, Re-key, RNG Retrieve, ...), a Byte String that
    no request sent is compared by length only;
  - Vendor Identification, Server Information, and the text of Result Message;
  - the value of the Random Number Generator attribute, which describes the
    server's generator as Server Information describes the server (present
    or not is still compared);
  - the order of attributes in Get Attributes / Get Attribute List answers
    (KMIP leaves it to the server).

XML <-> TTLV goes through `keelctl ttlv convert` (the project's codec); the
expected responses are normalised by the same codec, so both sides of the
comparison are printed by one encoder.

  run_conformance.py                       # all files; summary on stdout
  run_conformance.py --only SKLC           # files whose name contains SKLC
  run_conformance.py --report docs/conformance.md --write-expected tests/conformance/expected-pass.txt
  run_conformance.py --check tests/conformance/expected-pass.txt   # what CTest runs

Environment: KEEL_KEELD, KEEL_KEELCTL, KEEL_VECTORS (set by CTest).
"""
import argparse
import collections
import concurrent.futures
import datetime
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_dev import Keeld  # noqa: E402  (the one keeld --dev fixture)
from test_server import GUARD, read_frame  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

MESSAGE = re.compile(r"<(RequestMessage|ResponseMessage)>.*?</\1>", re.S)
PLACEHOLDER = re.compile(r'value="(\$[A-Z_0-9]+(?:[+-]\d+)?)"')
NOW = re.compile(r"^\$NOW([+-]\d+)?$")
# Operations whose results depend on the server's random numbers.
RANDOM_OPS = ("Create", "CreateKeyPair", "ReKey", "ReKeyKeyPair", "RNGRetrieve", "DeriveKey",
              "Certify", "ReCertify", "CreateSplitKey")
# Lists whose order KMIP leaves to the server: Get Attributes, Get Attribute
# List, Query.
UNORDERED = ("Attribute", "AttributeName", "Operation", "ObjectType")
IGNORED_VALUE = ("TimeStamp", "VendorIdentification")
IGNORED_WHOLE = ("ServerInformation", "ResultMessage")
SERVER_DESCRIBED = ("Random Number Generator",)  # attributes compared by name only


class Mismatch(Exception):
    pass


def profile_of(name):
    """('SKLC', 'M') for SKLC-M-1-13.xml; ('TC', '') for a test case."""
    m = re.match(r"^(.*?)[-_]([MO])[-_]", name)
    if m:
        return m.group(1).replace("_", "-"), m.group(2)
    return "TC", ""


def keelctl(args, data):
    r = subprocess.run([KEELCTL, "ttlv", "convert", *args], input=data, capture_output=True,
                       timeout=GUARD)
    if r.returncode != 0:
        raise Mismatch("keelctl ttlv convert %s: %s" % (" ".join(args),
                                                        r.stderr.decode().strip()))
    return r.stdout


def canonical(responses):
    """The expected responses as keelctl prints them (one call for the file)."""
    if not responses:
        return []
    wrapped = "<RequestMessage>%s</RequestMessage>" % "".join(responses)
    return list(ET.fromstring(keelctl(["--from", "xml", "--to", "xml"], wrapped.encode())))


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S+00:00")


class Case:
    """One test-case file: its messages, placeholders learnt so far, outcome."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.version = os.path.basename(os.path.dirname(path))
        self.profile, self.kind = profile_of(self.name)
        # SASED-M-1..3 are one scenario in three files (configure, register,
        # retrieve): they share a client identity and run in order.
        self.group = (self.version + "/SASED") if self.profile == "SASED" else path
        self.learnt = {}
        self.reason = None

    def load(self):
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        msgs = [(m.group(1), m.group(0)) for m in MESSAGE.finditer(text)]
        self.requests = [(i, x) for i, (k, x) in enumerate(msgs) if k == "RequestMessage"]
        expected = canonical([x for k, x in msgs if k == "ResponseMessage"])
        it = iter(expected)
        self.pairs = []  # (request xml, expected response element or None)
        for i, (k, x) in enumerate(msgs):
            if k == "RequestMessage":
                nxt = msgs[i + 1][0] if i + 1 < len(msgs) else None
                self.pairs.append((x, next(it) if nxt == "ResponseMessage" else None))
        reqs = "".join(x for x, _ in self.pairs)
        # What the client sent: response values equal to these must come back.
        self.sent = set(re.findall(r'value="([^"]*)"', reqs))
        self.random = any('<Operation type="Enumeration" value="%s"/>' % op in reqs
                          or '<Operation type="Enumeration" value="%s" />' % op in reqs
                          for op in RANDOM_OPS)

    def substitute(self, xml, start):
        def sub(m):
            ph = m.group(1)
            now = NOW.match(ph)
            if now:
                return 'value="%s"' % iso(start + int(now.group(1) or 0))
            return 'value="%s"' % self.learnt.get(ph, ph)
        return PLACEHOLDER.sub(sub, xml)

    def compare(self, exp, act, path):
        where = "/".join(path + [exp.tag])
        if exp.tag != act.tag:
            raise Mismatch("%s: expected %s, got %s" % ("/".join(path), exp.tag, act.tag))
        if exp.tag in IGNORED_WHOLE:
            return
        if exp.tag == "Attribute" and attribute_name(exp) in SERVER_DESCRIBED:
            if attribute_name(act) != attribute_name(exp):
                raise Mismatch("%s: expected %s, got %s" % (where, describe(exp), describe(act)))
            return
        if exp.get("type") != act.get("type"):
            raise Mismatch("%s: expected type %s, got %s" % (where, exp.get("type"),
                                                             act.get("type")))
        self.compare_value(exp, act, where)
        self.compare_children(list(exp), list(act), path + [exp.tag])

    def compare_value(self, exp, act, where):
        e, a, typ = exp.get("value"), act.get("value"), exp.get("type")
        if e is None or e == a or exp.tag in IGNORED_VALUE:
            return
        if e.startswith("$"):
            if NOW.match(e):
                return
            if self.learnt.setdefault(e, a) != a:
                raise Mismatch("%s: %s is %s here, %s before" % (where, e, a, self.learnt[e]))
            return
        if typ == "DateTime" and e not in self.sent:
            return  # a date the server chose
        if typ == "ByteString" and self.random and e not in self.sent:
            if len(e) != len(a or ""):
                raise Mismatch("%s: expected %d bytes, got %d" % (where, len(e) // 2,
                                                                 len(a or "") // 2))
            return
        raise Mismatch("%s: expected %s, got %s" % (where, short(e), short(a)))

    def compare_children(self, exp, act, path):
        exp = [c for c in exp if c.tag not in IGNORED_WHOLE]
        act = [c for c in act if c.tag not in IGNORED_WHOLE]
        if path[-1:] == ["ResponsePayload"]:
            act = self.payload_leeway(exp, act, path)
        for e, a in zip(exp, act):
            self.compare(e, a, path)
        if len(exp) != len(act):
            extra = act[len(exp):] if len(act) > len(exp) else exp[len(act):]
            raise Mismatch("%s: %s %s" % ("/".join(path),
                                          "unexpected" if len(act) > len(exp) else "missing",
                                          ", ".join(describe(c) for c in extra[:4])))

    def payload_leeway(self, exp, act, path):
        """What KMIP leaves to the server in a response payload: the order of
        attributes and of Query's lists, newer versions in Discover Versions,
        the optional Located Items (1.3+). Returns act arranged like exp."""
        if not any(c.tag == "LocatedItems" for c in exp):
            act = [c for c in act if c.tag != "LocatedItems" or self.version < "v1.3"]
        if exp and all(c.tag == "ProtocolVersion" for c in exp + act):
            known = {version_of(c) for c in exp}
            act = [c for c in act if version_of(c) in known]
        for tag in {c.tag for c in exp if c.tag in UNORDERED
                    and sum(x.tag == c.tag for x in exp + act) > 2}:
            want = [c for c in exp if c.tag == tag]
            have, rest = self.reorder(want, [c for c in act if c.tag == tag])
            if rest or len(have) != len(want):
                missing = [describe(c) for c in want[len(have):]]
                raise Mismatch("%s: %s%s%s" % (
                    "/".join(path), "missing " + ", ".join(missing[:5]) if missing else "",
                    "; " if missing and rest else "",
                    "unexpected " + ", ".join(describe(c) for c in rest[:5]) if rest else ""))
            order = iter(have)
            act = [next(order) if c.tag == tag else c for c in act]
        return act

    def reorder(self, want, have):
        """(matches, left over): have rearranged to follow want, as far as
        elements match; want's unmatched elements moved to its end."""
        rest, out, unmatched = list(have), [], []
        for e in want:
            for a in rest:
                try:
                    Probe(self).compare(e, a, [])
                except Mismatch:
                    continue
                out.append(a)
                rest.remove(a)
                break
            else:
                unmatched.append(e)
        want[:] = [e for e in want if e not in unmatched] + unmatched
        return out, rest


def short(v):
    return v if v is None or len(v) <= 40 else v[:32] + "...(%d)" % len(v)


def version_of(el):
    return tuple(c.get("value") for c in el)


class Probe(Case):
    """A trial comparison that learns nothing."""

    def __init__(self, case):  # pylint: disable=super-init-not-called
        self.__dict__.update(case.__dict__)
        self.learnt = dict(case.learnt)


def attribute_name(el):
    name = el.find("AttributeName")
    return name.get("value") if name is not None else None


def describe(el):
    name = el.find("AttributeName")
    if name is not None:
        return "%s %r" % (el.tag, name.get("value"))
    return el.tag + ("=" + el.get("value") if el.get("value") else "")


def first_operation(xml):
    m = re.search(r'<Operation type="Enumeration" value="([A-Za-z]+)"', xml)
    return m.group(1) if m else "?"


def request_hint(req):
    """' [AES 256]'-like summary of the request's algorithm and length."""
    alg = re.search(r'"Cryptographic Algorithm"\s*/>\s*<AttributeValue type="Enumeration" '
                    r'value="([^"]+)"', req)
    ln = re.search(r'"Cryptographic Length"\s*/>\s*<AttributeValue type="Integer" '
                   r'value="([^"]+)"', req)
    parts = [m.group(1) for m in (alg, ln) if m]
    return " [%s]" % " ".join(parts) if parts else ""


def result_summary(resp):
    """'OperationFailed/ItemNotFound "text"' of the first failed batch item."""
    for item in resp.iter("BatchItem"):
        st = item.find("ResultStatus")
        if st is not None and st.get("value") != "Success":
            reason = item.find("ResultReason")
            msg = item.find("ResultMessage")
            return "%s/%s%s" % (st.get("value"), reason.get("value") if reason is not None
                                else "-", ' "%s"' % msg.get("value") if msg is not None else "")
    return "Success"


def response_xml(got, n, op):
    """The response as keelctl prints it in XML; a response it cannot print
    is a failure named by the first line of its text form that holds raw
    bytes, or keelctl's reason."""
    try:
        return ET.fromstring(keelctl(["--from", "hex", "--to", "xml"], got.hex().encode()))
    except Mismatch as e:
        text = subprocess.run([KEELCTL, "ttlv", "convert", "--from", "hex", "--to", "text"],
                              input=got.hex().encode(), capture_output=True,
                              timeout=GUARD).stdout.decode(errors="replace").splitlines()
        bad = [ln.strip() for ln in text if "\\x" in ln]
        lines = [ln.strip() for ln in text]
        where = ""
        if bad:
            i = lines.index(bad[0])
            where = " near %s %s" % (lines[i - 1] if i else "", bad[0][:60])
        raise Mismatch("request %d (%s): response not printable as XML (%s)%s" % (
            n, op, str(e).split(": ")[-1], where)) from None


def run_group(cases, port, ctx):
    for c in cases:
        run_case(c, port, ctx)


def run_case(case, port, ctx):
    """Runs one file; case.reason stays None when every response matched."""
    try:
        case.load()
        start = time.time()
        with socket.create_connection(("127.0.0.1", port), GUARD) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            for n, (req, exp) in enumerate(case.pairs, 1):
                op = first_operation(req)
                msg = bytes.fromhex(keelctl(["--from", "xml", "--to", "hex"],
                                            case.substitute(req, start).encode()).decode())
                s.sendall(msg)
                got = read_frame(s)
                if not got:
                    raise Mismatch("request %d (%s): connection closed" % (n, op))
                if exp is None:
                    continue
                act = response_xml(got, n, op)
                try:
                    case.compare(exp, act, [])
                except Mismatch as e:
                    want, have = result_summary(exp), result_summary(act)
                    if want.split(" ")[0] != have.split(" ")[0]:
                        raise Mismatch("request %d (%s): %s, expected %s%s" % (
                            n, op, have, want.split(" ")[0], request_hint(req))) from None
                    raise Mismatch("request %d (%s): %s" % (n, op, e)) from None
    except Mismatch as e:
        case.reason = str(e)
    except (OSError, ssl.SSLError, ET.ParseError) as e:
        case.reason = "%s: %s" % (type(e).__name__, e)
    return case


class Identities:
    """A client certificate per file, signed by the dev CA (which the run
    trusts, see trust_dev_ca); keys in a directory of their own."""

    def __init__(self, d, names):
        with open(os.path.join(d, "secrets/ca.key"), "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(d, "certs/ca.crt"), "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        self.keys = tempfile.mkdtemp(prefix="keel-conf-ids-")
        self.paths = {}
        now = datetime.datetime.now(datetime.timezone.utc)
        for i, name in enumerate(names):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                "conformance-%d" % i)]))
                    .issuer_name(ca.subject).public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(hours=1))
                    .not_valid_after(now + datetime.timedelta(days=2))
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                   critical=False)
                    .sign(ca_key, hashes.SHA256()))
            pem = cert.public_bytes(serialization.Encoding.PEM)
            crt, kp = (os.path.join(self.keys, "%d.%s" % (i, x)) for x in ("crt", "key"))
            with open(crt, "wb") as f:
                f.write(pem)
            with open(kp, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            self.paths[name] = (crt, kp)

    def context(self, d, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(d, "certs/ca.crt"))
        ctx.load_cert_chain(*self.paths[name])
        return ctx


def trust_dev_ca(d):
    """Every certificate the dev CA signs becomes a KMIP client, each its own
    identity (vCenter's "trust a root CA" method, keelctl client trust-ca)."""
    r = subprocess.run([KEELCTL, "client", "trust-ca", "--cert", os.path.join(d, "certs/ca.crt"),
                        "--name", "conformance-ca", "--config", os.path.join(d, "keeld.conf")],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit("keelctl client trust-ca failed:\n" + r.stderr.decode())


def start_keeld(d):
    k = Keeld(d, ("--log-level", "warning"))
    try:
        return k.ready()
    except AssertionError:
        k.kill()
        raise


def run_all(cases, jobs):
    """One keeld --dev for the run; files in parallel on their own identities."""
    tmp = tempfile.mkdtemp(prefix="keel-conf-")
    d, ids = os.path.join(tmp, "dev"), None
    try:
        k = start_keeld(d)  # first start makes the appliance and its CA
        ids = Identities(d, sorted({c.group for c in cases}))
        trust_dev_ca(d)
        if k.stop() != 0:  # the next start serves the trusted CA from the first handshake
            raise SystemExit("keeld --dev exited badly on SIGTERM:\n" + k.stderr_text())
        k = start_keeld(d)
        try:
            serve(k, d, ids, cases, jobs)
        finally:
            status = k.stop()
        if status != 0:
            raise SystemExit("keeld exited with %s:\n%s" % (status, k.stderr_text()[-4000:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ids is not None:
            shutil.rmtree(ids.keys, ignore_errors=True)


def serve(k, d, ids, cases, jobs):
    groups = collections.defaultdict(list)
    for c in cases:
        groups[c.group].append(c)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_group, g, k.port, ids.context(d, name))
                   for name, g in groups.items()]
        for f in futures:
            f.result()
    if k.proc.poll() is not None:
        raise SystemExit("keeld died during the run (status %s):\n%s" % (
            k.proc.returncode, k.stderr_text()[-4000:]))


def case_id(c):
    return "%s/%s" % (c.version, c.name)


def table(cases):
    """Markdown rows: profile, then pass/total per version."""
    versions = sorted({c.version for c in cases})
    counts = collections.defaultdict(lambda: [0, 0])
    for c in cases:
        key = (c.profile, c.kind, c.version)
        counts[key][1] += 1
        counts[key][0] += c.reason is None
    rows = ["| Profile | " + " | ".join(versions) + " | All |",
            "|---|" + "---|" * (len(versions) + 1)]
    for prof, kind in sorted({(c.profile, c.kind) for c in cases}):
        label = prof + {"M": " mandatory", "O": " optional", "": " test cases"}[kind]
        cells, tp, tt = [], 0, 0
        for v in versions:
            p, t = counts.get((prof, kind, v), (0, 0))
            cells.append("%d/%d" % (p, t) if t else "")
            tp, tt = tp + p, tt + t
        rows.append("| %s | %s | %d/%d |" % (label, " | ".join(cells), tp, tt))
    p = sum(c.reason is None for c in cases)
    rows.append("| **All** | %s | **%d/%d** |" % (" | ".join(
        "%d/%d" % (sum(c.reason is None for c in cases if c.version == v),
                   sum(c.version == v for c in cases)) for v in versions), p, len(cases)))
    return rows


def claimed(cases):
    """Profiles (by version) whose mandatory cases all pass."""
    out = []
    for prof, v in sorted({(c.profile, c.version) for c in cases if c.kind == "M"}):
        mine = [c for c in cases if c.kind == "M" and c.profile == prof and c.version == v]
        if all(c.reason is None for c in mine):
            out.append("%s %s" % (prof, v))
    return out


def causes(fails):
    """The most common first mismatches, with the request number left out."""
    count = collections.Counter(re.sub(r"^request \d+ ", "", c.reason) for c in fails)
    return count.most_common(12)


def report(cases, seconds, path):
    fails = [c for c in cases if c.reason is not None]
    claims = claimed(cases)
    lines = [
        "# KMIP conformance: the OASIS XML test cases against keeld",
        "",
        "Generated by `tests/conformance/run_conformance.py` against a live `keeld --dev`",
        "(real TLS, one client identity per file); do not edit by hand. Regenerate with:",
        "",
        "    cmake --build build && KEEL_KEELD=build/appliance/keeld \\",
        "      KEEL_KEELCTL=build/tools/keelctl/keelctl \\",
        "      tests/conformance/run_conformance.py --report docs/conformance.md \\",
        "        --write-expected tests/conformance/expected-pass.txt",
        "",
        "The CTest `conformance` (label `integration`) fails when a case listed in",
        "tests/conformance/expected-pass.txt fails; add cases there as they pass.",
        "",
        "What the comparison ignores, because it must differ from the reference",
        "server's recording: unique identifiers and other `$` placeholders (learnt",
        "from the first response, then checked and substituted), `$NOW` and the",
        "header time stamp, dates no request sent, random bytes (in files that make",
        "keys or draw random numbers, a byte string no request sent is compared by",
        "length), Vendor Identification, Server Information, Result Message text, the",
        "value of the Random Number Generator attribute (it describes the server's",
        "generator, as Server Information describes the server), and",
        "the order of attributes. Everything else must match: result status and",
        "reason, operations, batch items, object types, attributes and their values.",
        "",
        "How it runs: one `keeld --dev` for the whole run (the fixture of",
        "tests/integration/test_dev.py); every file gets a client certificate of its",
        "own, issued by the dev CA, which the run trusts (keelctl client trust-ca), so keeld's",
        "ownership rules give it an empty object space (the three SASED files are one",
        "scenario and share one). Measured on the 2-core dev box: issuing the 410",
        "identities takes about 1 s; the alternative, a copied fresh DIR and a keeld",
        "restart per file, costs about 30 ms a file but serialises the files behind",
        "restarts. Two files run at once. Messages go through `keelctl ttlv convert`",
        "(about 6 ms a call, two calls a request), which keeps the runner a short",
        "Python script on the project's own codec rather than a second C client.",
        "",
        "## Results (passed/total, %d files, run %s in %.0f s)" % (
            len(cases), time.strftime("%Y-%m-%d"), seconds),
        "",
        *table(cases),
        "",
        "## Profiles Keel claims",
        "",
        "A profile is claimed for a version when all of its mandatory (`_M_`) cases pass"
        " there.",
        "",
        ("Claimed: " + ", ".join(claims) + ".") if claims else
        "None yet: no profile has all of its mandatory cases passing.",
        "",
        "## Top failure causes (files per first mismatch)",
        "",
        "| Files | First mismatch |",
        "|---|---|",
        *("| %d | %s |" % (n, r.replace("|", "\\|")[:160]) for r, n in causes(fails)),
        "",
        "## Failing cases (first mismatch)",
        "",
        "The engine team's to-do list. `expected X` is the recorded answer; paths are",
        "XML tag paths in the response.",
        "",
    ]
    for c in sorted(fails, key=lambda c: (c.version, c.profile, c.kind, c.name)):
        lines.append("- `%s`: %s" % (case_id(c), c.reason.replace("|", "\\|")[:300]))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def find_vectors(arg):
    """--vectors, else $KEEL_VECTORS/oasis-xml, else ../shared/vectors/oasis-xml
    next to the checkout; None when the one chosen is absent."""
    env = os.environ.get("KEEL_VECTORS")
    d = arg or (os.path.join(env, "oasis-xml") if env else
                os.path.join(HERE, "..", "..", "..", "shared", "vectors", "oasis-xml"))
    return os.path.abspath(d) if os.path.isdir(d) else None


def main():
    global KEELCTL  # pylint: disable=global-statement
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", help="the oasis-xml folder (default: $KEEL_VECTORS/oasis-xml)")
    ap.add_argument("--only", action="append", default=[],
                    help="run files whose version/name contains this (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="files in flight at once")
    ap.add_argument("--check", metavar="LIST", help="fail if a case in LIST fails")
    ap.add_argument("--report", metavar="MD", help="write the Markdown report")
    ap.add_argument("--write-expected", metavar="LIST", help="write the passing cases")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    args = ap.parse_args()
    KEELCTL = os.environ.get("KEEL_KEELCTL", "")
    if not os.environ.get("KEEL_KEELD") or not KEELCTL:
        raise SystemExit("KEEL_KEELD and KEEL_KEELCTL must name the built binaries")
    vec = find_vectors(args.vectors)
    if vec is None:
        print("SKIPPED: no OASIS XML vectors ($KEEL_VECTORS/oasis-xml or ../shared/vectors)"
              " -- the conformance suite did not run", file=sys.stderr)
        return SKIPPED
    expected = set()
    if args.check:
        with open(args.check, encoding="utf-8") as f:
            expected = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
    paths = sorted(os.path.join(r, n) for r, _, fs in os.walk(vec) for n in fs
                   if n.endswith(".xml"))
    cases = [Case(p) for p in paths]
    missing = expected - {case_id(c) for c in cases}
    if missing:
        raise SystemExit("expected-pass cases without a file: %s" % sorted(missing))
    if args.only:
        cases = [c for c in cases if any(o in case_id(c) for o in args.only)]
    t0 = time.time()
    run_all(cases, args.jobs)
    seconds = time.time() - t0
    passed = [c for c in cases if c.reason is None]
    for c in cases:
        if c.reason is not None and (args.verbose or case_id(c) in expected):
            print("FAIL %s: %s" % (case_id(c), c.reason))
    print("%d of %d files pass (%.1f s)" % (len(passed), len(cases), seconds))
    if args.report:
        report(cases, seconds, args.report)
    if args.write_expected:
        with open(args.write_expected, "w", encoding="utf-8") as f:
            f.write("# OASIS XML cases that pass against keeld today; the conformance test\n"
                    "# fails when one of them stops passing. Regenerate with\n"
                    "# run_conformance.py --write-expected (see docs/conformance.md).\n")
            f.writelines(case_id(c) + "\n" for c in sorted(passed, key=case_id))
    regressed = [c for c in cases if c.reason is not None and case_id(c) in expected]
    news = [case_id(c) for c in passed if args.check and case_id(c) not in expected]
    if news:
        print("%d case(s) pass that expected-pass.txt does not list yet (regenerate it): %s"
              % (len(news), ", ".join(news[:10])))
    if regressed:
        print("%d expected-pass case(s) failed" % len(regressed))
        return 1
    return 0


KEELCTL = ""
SKIPPED = 77  # CTest's SKIP_RETURN_CODE

if __name__ == "__main__":
    sys.exit(main())
