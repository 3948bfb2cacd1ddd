#!/usr/bin/python3
"""Integration tests of keeld's transport (appliance/server): a real server
process (keel_echo_server, or keeld itself) on a free loopback port, real TLS
clients (Python's ssl module, the openssl CLI).

Synchronisation is on events only: the server's READY line, its log lines,
the HOLD line of the echo handler, a connection closing. Timeouts below are
guards that fail a stuck test, never a way to wait for something.

Run one test:  test_server.py ServerTest.test_registered_client_answered
Environment:   KEEL_ECHO_SERVER, KEEL_KEELD, KEEL_GEN_CERTS (set by CTest).
"""
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import unittest

from procwatch import GUARD, SLOW, Process, memcheck  # noqa: F401  (GUARD is imported from here too)

ECHO = os.environ.get("KEEL_ECHO_SERVER", "")
KEELD = os.environ.get("KEEL_KEELD", "")
GEN_CERTS = os.environ.get("KEEL_GEN_CERTS", os.path.join(os.path.dirname(__file__), "gen-certs.sh"))


def frame(body=b"\x42\x00\x69\x01\x00\x00\x00\x00", tag=0x420078, typ=0x01, length=None):
    """A TTLV message: header (tag, type, length) and body, as the server frames it."""
    if length is None:
        length = len(body)
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", length) + body


def read_frame(sock):
    """Reads one frame; returns b"" when the server closed instead."""
    hdr = read_exact(sock, 8)
    if len(hdr) < 8:
        return b""
    (length,) = struct.unpack(">I", hdr[4:])
    return hdr + read_exact(sock, length)


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def wait_closed(sock):
    """Blocks until the server closes the connection (EOF or reset); returns
    the bytes received before that, which must be none."""
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got
            got += chunk
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return got


class Pki:
    """The test PKI, generated once per process by gen-certs.sh."""

    _dir = None

    @classmethod
    def dir(cls):
        if cls._dir is None:
            cls._dir = tempfile.mkdtemp(prefix="keel-pki-")
            subprocess.run(["sh", GEN_CERTS, cls._dir], check=True, capture_output=True)
        return cls._dir

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir(), name)


class Server(Process):
    """A server process with its own config; tests wait on its lines."""

    def __init__(self, binary=None, cert="server-chain.pem", key="server.key",
                 clients_dir=True, ca_file=None, limits=None, listen=None, extra="", crl=None,
                 workers=2):
        self.dir = tempfile.mkdtemp(prefix="keel-srv-")
        self.clients = os.path.join(self.dir, "clients")
        shutil.copytree(Pki.path("clients"), self.clients)
        limits = dict({"frame_timeout_ms": 60000, "idle_timeout_ms": 60000}, **(limits or {}))
        listen = listen or ["127.0.0.1:0", "[::1]:0"]
        lines = [
            "listen = [ %s ];" % ", ".join('"%s"' % a for a in listen),
            'log_level = "debug";',
            "worker_threads = %d;" % workers,
            'tls: { certificate = "%s"; private_key = "%s";%s };' % (
                Pki.path(cert), Pki.path(key), ' crl_file = "%s";' % crl if crl else ""),
            "clients: {%s%s };" % (
                ' certificates_dir = "clients";' if clients_dir else "",
                ' ca_file = "%s";' % Pki.path(ca_file) if ca_file else ""),
            "limits: { %s };" % " ".join("%s = %d;" % kv for kv in limits.items()),
            extra,
        ]
        self.conf = os.path.join(self.dir, "keeld.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        binary = binary or ECHO
        argv = [binary, "--config", self.conf] if binary == KEELD else [binary, self.conf]
        super().__init__([*memcheck(), *argv], stdin=subprocess.PIPE)
        self.ports = []

    def ready(self):
        m = self.wait_line(self.out, r"^READY((?: \d+)+)$")
        self.ports = [int(p) for p in m.group(1).split()]
        return self

    def ready_keeld(self):
        m = self.wait_line(self.err, r"listening on \S+ \(port (\d+)\)")
        self.ports = [int(m.group(1))]
        return self

    def stop(self):
        self.end()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def client_ctx(cert="client", tls_min=ssl.TLSVersion.TLSv1_2, tls_max=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(Pki.path("ca.crt"))
    if tls_min < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client even try
    ctx.minimum_version = tls_min
    if tls_max is not None:
        ctx.maximum_version = tls_max
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if cert is not None:
        ctx.load_cert_chain(Pki.path(cert + ".crt"), Pki.path(cert + ".key"))
    return ctx


def no_ticket_ctx():
    """TLS 1.2 without session tickets: resumption by the server's cache."""
    ctx = client_ctx(tls_max=ssl.TLSVersion.TLSv1_2)
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def connect(port, ctx, host="127.0.0.1", session=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(GUARD)
    raw.connect((host, port))
    return ctx.wrap_socket(raw, server_hostname="localhost", session=session)


class Base(unittest.TestCase):
    server_args = {}

    def setUp(self):
        self.srv = Server(**self.server_args).ready()
        self.port = self.srv.ports[0]

    def tearDown(self):
        self.srv.stop()

    def roundtrip(self, ctx=None, body=b"KEEL-ECHO-TEST-1", host="127.0.0.1", port=None):
        with connect(port or self.port, ctx or client_ctx(), host) as s:
            req = frame(body)
            s.sendall(req)
            self.assertEqual(read_frame(s), req)

    def assert_refused(self, ctx, mark=None, session=None, other=None):
        """The handshake fails (for TLS 1.3 the client may only learn it on
        its first read): no answer ever comes back, while |other| (a client
        context) is served."""
        try:
            s = connect(self.port, ctx, session=session)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
        else:
            with s:
                try:
                    s.sendall(frame(b"SHOULD-NOT-ECHO!"))
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    pass
                self.assertEqual(wait_closed(s), b"")
        # Logged at debug, and the server carries on.
        self.srv.wait_line(self.srv.err, r"debug: .*(handshake failed|not registered)", mark or 0)
        self.roundtrip(other)

    def session_after(self, ctx, end, pattern):
        """A new session: one request, then |end|(sock) ends the connection;
        returns the session once the server has logged |pattern| about that
        connection, so it is closed. Python resumes it only with |ctx|."""
        mark = self.srv.mark()
        with connect(self.port, ctx) as s:
            peer = "127.0.0.1:%d: " % s.getsockname()[1]
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
            self.assertFalse(s.session_reused)
            session = s.session
            end(s)
        self.srv.wait_line(self.srv.err, r"debug: " + re.escape(peer) + pattern, mark)
        return session

    def resumes(self, ctx, session):
        with connect(self.port, ctx, session=session) as s:
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
            return s.session_reused

    def assert_closed_by_server(self, payload, pattern):
        mark = self.srv.mark()
        with connect(self.port, client_ctx()) as s:
            s.sendall(payload)
            self.assertEqual(wait_closed(s), b"")
        self.srv.wait_line(self.srv.err, pattern, mark)
        self.roundtrip()


class ServerTest(Base):
    server_args = {"limits": {"frame_timeout_ms": 300}}

    def test_registered_client_answered(self):
        self.roundtrip()
        self.roundtrip(client_ctx("selfsigned"))  # a pinned self-signed (vCenter-style) cert
        self.roundtrip(host="::1", port=self.srv.ports[1])
        # Several requests on one connection, some pipelined: answered in order.
        with connect(self.port, client_ctx()) as s:
            reqs = [frame(b"REQUEST-%08d" % i) for i in range(6)]
            s.sendall(reqs[0])
            self.assertEqual(read_frame(s), reqs[0])
            s.sendall(b"".join(reqs[1:]))
            for r in reqs[1:]:
                self.assertEqual(read_frame(s), r)

    def test_large_pipelined_frames(self):
        # Frames over many TLS records, pipelined: the server stops reading
        # while one is with a worker and must pick up what OpenSSL and libevent
        # already hold when it resumes.
        big = [frame(bytes([i]) * (200000 + 8 * i)) for i in range(3)]
        small = [frame(b"SMALL-%010d" % i) for i in range(3)]
        with connect(self.port, client_ctx()) as s:
            for _ in range(2):
                reqs = [f for pair in zip(big, small) for f in pair]
                s.sendall(b"".join(reqs))
                for r in reqs:
                    self.assertEqual(read_frame(s), r)

    def test_both_tls_versions_and_resumption(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(tls_min=version, tls_max=version)
            with connect(self.port, ctx) as s:
                self.assertEqual(s.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                               ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
                s.sendall(frame())
                self.assertEqual(read_frame(s), frame())  # a TLS 1.3 ticket arrives by now
                session = s.session
            for _ in range(2):  # a session (a TLS 1.3 ticket too) is not single-use
                with connect(self.port, ctx, session=session) as s:
                    self.assertTrue(s.session_reused, version)
                    s.sendall(frame())
                    self.assertEqual(read_frame(s), frame())

    def test_tls12_cache_resumes_after_clean_close(self):
        ctx = no_ticket_ctx()
        # The client's close_notify is answered with the server's (unwrap
        # waits for it), and the session stays in the cache.
        session = self.session_after(ctx, lambda s: s.unwrap(), r"closed by client after 1 req")
        self.assertTrue(self.resumes(ctx, session))
        # A bare TCP close after an answer, as vCenter does, is a clean end too.
        session = self.session_after(ctx, lambda s: None, r"closed by client after 1 req")
        self.assertTrue(self.resumes(ctx, session))

    def test_tls12_protocol_error_drops_session(self):
        def garbage(s):
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertEqual(wait_closed(s), b"")
        ctx = no_ticket_ctx()
        self.assertFalse(self.resumes(ctx, self.session_after(ctx, garbage, r"not a TTLV header")))

    def test_full_chain_sent(self):
        out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                              "-cert", Pki.path("client.crt"), "-key", Pki.path("client.key"),
                              "-CAfile", Pki.path("ca.crt"), "-showcerts"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=GUARD).stdout
        self.assertEqual(out.count(b"-----BEGIN CERTIFICATE-----"), 2, out)

    def test_unregistered_cert_refused(self):
        self.assert_refused(client_ctx("client2"), self.srv.mark())  # right CA, not registered

    def test_other_ca_refused(self):
        self.assert_refused(client_ctx("stranger"), self.srv.mark())

    def test_no_cert_refused(self):
        self.assert_refused(client_ctx(None), self.srv.mark())

    def test_tls10_refused(self):
        self.assert_refused(client_ctx(tls_min=ssl.TLSVersion.TLSv1, tls_max=ssl.TLSVersion.TLSv1),
                            self.srv.mark())

    def test_tls11_refused(self):
        self.assert_refused(client_ctx(tls_min=ssl.TLSVersion.TLSv1_1,
                                       tls_max=ssl.TLSVersion.TLSv1_1), self.srv.mark())

    def test_weak_tls12_cipher_refused(self):
        ctx = client_ctx(tls_max=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA")
        self.assert_refused(ctx, self.srv.mark())

    def test_oversized_length_closes(self):
        # Default max 1 MiB; the server must not wait for the body.
        self.assert_closed_by_server(frame(b"", length=2 << 20), r"over limits.max_message_size")

    def test_non_structure_closes(self):
        self.assert_closed_by_server(frame(b"\0" * 8, typ=0x02), r"not a TTLV Structure")

    def test_garbage_closes(self):
        self.assert_closed_by_server(b"GET / HTTP/1.0\r\n\r\n", r"not a TTLV header")

    def test_truncated_frame_closed_after_timeout(self):
        # Header promises 64 bytes, 10 come: closed once frame_timeout_ms (300) passes.
        self.assert_closed_by_server(frame(b"x" * 10, length=64), r"frame timeout")

    def test_truncated_header_closed_after_timeout(self):
        self.assert_closed_by_server(b"\x42\x00\x78", r"frame timeout")

    def test_closing_without_message_is_quiet(self):
        # vCenter's health check: a full mTLS handshake, then a close.
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            mark = self.srv.mark()
            with connect(self.port, client_ctx(tls_min=version, tls_max=version)) as s:
                peer = "127.0.0.1:%d: " % s.getsockname()[1]
            # Depending on where the close meets the server (before or after its
            # session tickets went out) the reason differs; the level does not.
            self.srv.wait_line(self.srv.err, r"^keeld: debug: " + re.escape(peer) +
                               r"(closed by client|handshake failed|connection error)", mark)
        self.roundtrip()
        self.assertFalse([l for l in self.srv.err if l and re.match(r"keeld: (error|warning|notice):", l)])

    def test_200_concurrent_connections(self):
        async def one(i, opened):
            r, w = await asyncio.open_connection("127.0.0.1", self.port, ssl=client_ctx(),
                                                 server_hostname="localhost")
            opened.append(i)
            await all_open.wait()  # every connection is open before any asks
            req = frame(b"CONCURRENT-%05d" % i)
            w.write(req)
            hdr = await r.readexactly(8)
            body = await r.readexactly(struct.unpack(">I", hdr[4:])[0])
            w.close()
            return hdr + body == req

        async def main():
            global all_open
            all_open = asyncio.Event()
            opened = []
            tasks = [asyncio.create_task(one(i, opened)) for i in range(200)]
            while len(opened) < 200:
                done = [t for t in tasks if t.done()]
                for t in done:
                    t.result()  # surfaces a failed connection
                await asyncio.sleep(0)  # yield to the loop (no timing involved)
            all_open.set()
            return await asyncio.wait_for(asyncio.gather(*tasks), GUARD)

        self.assertEqual(asyncio.run(main()), [True] * 200)

    def test_sighup_registers_new_client(self):
        ctx2 = client_ctx("client2")
        self.assert_refused(ctx2, self.srv.mark())
        with connect(self.port, client_ctx()) as old:  # opened before the reload
            old.sendall(frame())
            self.assertEqual(read_frame(old), frame())
            shutil.copy(Pki.path("client2.crt"), self.srv.clients)
            mark = self.srv.mark()
            self.srv.proc.send_signal(signal.SIGHUP)
            self.srv.wait_line(self.srv.err, r"reloaded certificates and client registrations", mark)
            self.roundtrip(ctx2)
            old.sendall(frame())  # established connections carry on
            self.assertEqual(read_frame(old), frame())

    def test_sighup_with_broken_file_keeps_serving(self):
        with open(os.path.join(self.srv.clients, "broken.pem"), "w") as f:
            f.write("not a certificate\n")
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_line(self.srv.err, r"reload failed: keeping the running settings", mark)
        self.roundtrip()

    def test_sigterm_drains_in_flight(self):
        s = connect(self.port, client_ctx())
        held = frame(b"HOLD-THIS-ONE!!!")
        s.sendall(held)
        self.srv.wait_line(self.srv.out, r"^HOLD ")  # the request is with a worker
        idle = connect(self.port, client_ctx())  # connected, nothing asked
        loops = int(self.srv.wait_line(self.srv.err, r"info: (\d+) network threads").group(1))
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGTERM)
        self.srv.wait_lines(self.srv.err, r"draining loop", loops, mark)  # each stops accepting
        self.assertEqual(wait_closed(idle), b"")  # closed at once
        with self.assertRaises(ConnectionRefusedError):  # no longer accepting
            socket.create_connection(("127.0.0.1", self.port), GUARD).close()
        self.srv.proc.stdin.write(b"go\n")  # release the handler
        self.srv.proc.stdin.flush()
        self.assertEqual(read_frame(s), held)  # answered, then closed
        self.assertEqual(wait_closed(s), b"")
        self.assertEqual(self.srv.proc.wait(GUARD), 0)


class LoopsTest(Base):
    """Three network loops (appliance/server/src/listener.c), each with its
    own listening socket on the port: the kernel spreads connections over
    them by their addresses, so a few dozen connections reach every loop (one
    missing from 40 has a chance of 3 x (2/3)^40, 2e-7). What the loops share
    holds across them: the limits, a reload, the session cache, a drain."""
    LOOPS = 3
    server_args = {"workers": 4, "extra": "network_threads = %d;" % LOOPS,
                   "limits": {"max_connections_per_client": 4}}

    def served(self, ctx=None, session=None):
        """One request on a new connection: the loop that took it, whether it
        resumed, and its session."""
        mark = self.srv.mark()
        with connect(self.port, ctx or client_ctx(), session=session) as s:
            peer = "127.0.0.1:%d: " % s.getsockname()[1]
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
            reused, session = s.session_reused, s.session
        m = self.srv.wait_line(self.srv.err, r"debug: " + re.escape(peer) +
                               r"client .* connected on loop (\d+)(, resumed)?$", mark)
        self.assertEqual(bool(m.group(2)), reused)
        return int(m.group(1)), reused, session

    def test_every_loop_serves(self):
        self.assertEqual({self.served()[0] for _ in range(40)}, set(range(self.LOOPS)))
        self.srv.wait_line(self.srv.err, r"info: %d network threads" % self.LOOPS)

    def test_per_client_limit_every_loop(self):
        """Counted per loop, 4 per client would let in up to 12 of 24."""
        mark = self.srv.mark()
        held, answered = [], []
        for _ in range(24):
            try:
                s = connect(self.port, client_ctx())
                held.append(s)
                s.sendall(frame())
                answered.append(read_frame(s) == frame())
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                answered.append(False)
        self.assertEqual(answered.count(True), 4, answered)
        self.srv.wait_lines(self.srv.err, r"is at limits.max_connections_per_client", 20, mark)
        mark = self.srv.mark()
        for s in held:
            s.close()
        # Closed on whatever loop, the four come off the one count.
        self.srv.wait_lines(self.srv.err, r"closed by client after 1 requests", 4, mark)
        self.assertEqual({self.served()[0] for _ in range(40)}, set(range(self.LOOPS)))

    def test_reload_reaches_every_loop(self):
        self.assert_refused(client_ctx("client2"), self.srv.mark())
        shutil.copy(Pki.path("client2.crt"), self.srv.clients)
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_line(self.srv.err, r"reloaded certificates and client registrations", mark)
        ctx2 = client_ctx("client2")
        self.assertEqual({self.served(ctx2)[0] for _ in range(40)}, set(range(self.LOOPS)))

    def test_session_resumes_on_any_loop(self):
        """One session cache for every loop: a session made on one loop
        resumes on the others, with TLS 1.3 (a new session each time, as
        keeld's are single-use) and TLS 1.2."""
        for ctx in (client_ctx(tls_min=ssl.TLSVersion.TLSv1_3), no_ticket_ctx()):
            session = self.session_after(ctx, lambda s: s.close(), r"closed by client")
            loops = set()
            for _ in range(40):
                loop, reused, next_session = self.served(ctx, session)
                self.assertTrue(reused)
                loops.add(loop)
                session = next_session if next_session is not None else session
            self.assertEqual(loops, set(range(self.LOOPS)))

    def test_sigterm_drains_every_loop(self):
        """A request held on each loop at the SIGTERM: every one is answered."""
        by_loop = {}
        while len(by_loop) < self.LOOPS:  # a served connection kept per loop
            mark = self.srv.mark()
            s = connect(self.port, client_ctx())
            peer = "127.0.0.1:%d: " % s.getsockname()[1]
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
            m = self.srv.wait_line(self.srv.err, r"debug: " + re.escape(peer) +
                                   r"client .* connected on loop (\d+)", mark)
            if int(m.group(1)) in by_loop:
                s.close()
            else:
                by_loop[int(m.group(1))] = s
        held = frame(b"HOLD-THIS-ONE!!!")
        out = len(self.srv.out)
        for s in by_loop.values():
            s.sendall(held)
        self.srv.wait_lines(self.srv.out, r"^HOLD ", self.LOOPS, out)  # all with workers
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGTERM)
        self.srv.wait_lines(self.srv.err, r"draining loop", self.LOOPS, mark)
        with self.assertRaises(ConnectionRefusedError):  # no loop accepts any more
            socket.create_connection(("127.0.0.1", self.port), GUARD).close()
        self.srv.proc.stdin.write(b"go\n" * self.LOOPS)  # release the handlers
        self.srv.proc.stdin.flush()
        for s in by_loop.values():
            self.assertEqual(read_frame(s), held)  # answered, then closed
            self.assertEqual(wait_closed(s), b"")
        self.assertEqual(self.srv.proc.wait(GUARD), 0)

    def test_sigterm_closes_loops_with_nothing_in_flight(self):
        """A request held on one loop at the SIGTERM, connections still in
        their handshake on every loop: each of those is closed while the held
        one waits, though it ends without a close_notify. A loop left with
        nothing must still run the callback in which libevent closes such a
        socket, or its client waits for the other loops' drain."""
        s = connect(self.port, client_ctx())
        held = frame(b"HOLD-THIS-ONE!!!")
        s.sendall(held)
        self.srv.wait_line(self.srv.out, r"^HOLD ")
        raw = [socket.create_connection(("127.0.0.1", self.port), GUARD) for _ in range(24)]
        # A loop accepts its queue in order: one served after them on each
        # loop means every loop took its share of them.
        served_on = set()
        while served_on != set(range(self.LOOPS)):
            served_on.add(self.served()[0])
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGTERM)
        self.srv.wait_lines(self.srv.err, r"draining loop", self.LOOPS, mark)
        for r in raw:
            self.assertEqual(wait_closed(r), b"")
            r.close()
        self.srv.proc.stdin.write(b"go\n")
        self.srv.proc.stdin.flush()
        self.assertEqual(read_frame(s), held)
        self.assertEqual(wait_closed(s), b"")
        self.assertEqual(self.srv.proc.wait(GUARD), 0)


class LoopsTotalLimitTest(Base):
    """limits.max_connections over three loops: counted per loop, 6 would let
    in up to 18."""
    server_args = {"workers": 4, "extra": "network_threads = 3;",
                   "limits": {"max_connections": 6}}

    def test_total_limit_every_loop(self):
        conns = [connect(self.port, client_ctx()) for _ in range(6)]
        for s in conns:
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
        mark = self.srv.mark()
        for _ in range(12):  # each closed at accept, whichever loop takes it
            raw = socket.create_connection(("127.0.0.1", self.port), GUARD)
            self.assertEqual(raw.recv(1), b"")
            raw.close()
        self.srv.wait_lines(self.srv.err, r"limits.max_connections reached", 12, mark)
        mark = self.srv.mark()
        conns.pop().close()
        self.srv.wait_line(self.srv.err, r"closed by client", mark)
        self.roundtrip()  # one place free again
        for s in conns:
            s.close()


class RsaServerTest(Base):
    """An RSA server key: the static-RSA suites vCenter 7 uses (VCENTER.md §1)."""
    server_args = {"cert": "server-rsa-chain.pem", "key": "server-rsa.key"}

    def test_vcenter_tls12_suites(self):
        for suite in ("AES128-SHA256", "AES256-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                      "ECDHE-RSA-AES128-GCM-SHA256"):
            ctx = client_ctx(tls_max=ssl.TLSVersion.TLSv1_2, ciphers=suite)
            with connect(self.port, ctx) as s:
                self.assertEqual(s.cipher()[0], suite)
                s.sendall(frame())
                self.assertEqual(read_frame(s), frame())

    def test_tls13(self):
        self.roundtrip(client_ctx(tls_min=ssl.TLSVersion.TLSv1_3))

    def test_weak_suites_refused(self):
        for suite in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "DES-CBC3-SHA"):
            try:
                ctx = client_ctx(tls_max=ssl.TLSVersion.TLSv1_2, ciphers=suite + ":@SECLEVEL=0")
            except ssl.SSLError:
                continue  # the client's OpenSSL no longer has it at all
            self.assert_refused(ctx, self.srv.mark())


def accepted_tls12_suites(port):
    """Every TLS 1.2 cipher suite this OpenSSL can offer, tried one at a
    time: the ones the server completes a handshake with."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    names = {c["name"] for c in probe.get_ciphers() if c["protocol"] != "TLSv1.3"}
    accepted = set()
    for name in sorted(names):
        try:
            ctx = client_ctx(tls_max=ssl.TLSVersion.TLSv1_2, ciphers=name + ":@SECLEVEL=0")
        except ssl.SSLError:
            continue  # not offerable on its own (PSK, SRP, anonymous only)
        try:
            with connect(port, ctx) as s:
                accepted.add(s.cipher()[0])
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
    return accepted, len(names)


def s_client(port, *args, stdin=b"Q\n"):
    """openssl s_client to the server, |stdin| its commands (Q quits, R
    renegotiates): (exit status, everything it printed)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
                        Pki.path("ca.crt"), *args], input=stdin, capture_output=True,
                       timeout=GUARD)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def with_cert(name="client"):
    return ("-cert", Pki.path(name + ".crt"), "-key", Pki.path(name + ".key"))


def accepted_tls13_suites(port):
    suites = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
              "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"]
    accepted = set()
    for suite in suites:
        r = subprocess.run(["openssl", "s_client", "-brief", "-tls1_3", "-ciphersuites", suite,
                            "-connect", "127.0.0.1:%d" % port, "-cert", Pki.path("client.crt"),
                            "-key", Pki.path("client.key"), "-CAfile", Pki.path("ca.crt")],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=GUARD)
        if r.returncode == 0 and b"Ciphersuite: " + suite.encode() in r.stdout + r.stderr:
            accepted.add(suite)
    return accepted


class TlsPolicyTest(unittest.TestCase):
    """What keeld offers, enumerated suite by suite with real clients, is
    exactly the fixed policy (tls.c, VCENTER.md §1): TLS 1.2 with ECDHE and
    AES-GCM, plus the two static-RSA KMIP profile suites with an RSA key; the
    three TLS 1.3 suites. Nothing older than TLS 1.2."""

    def policy(self, cert, key, tls12):
        srv = Server(cert=cert, key=key).ready()
        try:
            accepted, tried = accepted_tls12_suites(srv.ports[0])
            self.assertGreater(tried, 30)  # the probe did offer the weak ones
            self.assertEqual(accepted, tls12)
            self.assertEqual(accepted_tls13_suites(srv.ports[0]),
                             {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                              "TLS_AES_128_GCM_SHA256"})
            for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                ctx = client_ctx(tls_min=version, tls_max=version)
                with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                    connect(srv.ports[0], ctx).close()
            self.renegotiation_compression_no_cert(srv.ports[0])
        finally:
            srv.stop()

    def renegotiation_compression_no_cert(self, port):
        # A TLS 1.2 client asking to renegotiate is told no (no_renegotiation).
        rc, out = s_client(port, "-tls1_2", *with_cert(), stdin=b"R\n")
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)
        self.assertNotEqual(rc, 0)
        # No compression, whatever the client offers (TLS 1.3 has none at all).
        rc, out = s_client(port, "-tls1_2", "-comp", *with_cert())
        self.assertEqual(rc, 0, out)
        self.assertIn("Compression: NONE", out)
        # No client certificate, no session (TLS 1.3: ServerTest.test_no_cert_refused).
        rc, out = s_client(port, "-tls1_2")
        self.assertIn("alert handshake failure", out)
        self.assertNotEqual(rc, 0)

    def test_ecdsa_server_key(self):
        self.policy("server-chain.pem", "server.key",
                    {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"})

    def test_rsa_server_key(self):
        self.policy("server-rsa-chain.pem", "server-rsa.key",
                    {"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
                     "AES256-SHA256", "AES128-SHA256"})


def write_crl(path, revoked=(), locate=None):
    """A CRL of the test CA listing the certificates |revoked| (names in the
    test PKI), as PEM at |path|. |locate| maps a file name ("ca.key",
    "client.crt") to its path (default: the test PKI's)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    locate = locate or Pki.path

    def load(name):
        with open(locate(name + ".crt"), "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    with open(locate("ca.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(load("ca").subject)
         .last_update(now).next_update(now + datetime.timedelta(days=1)))
    for name in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(
            load(name).serial_number).revocation_date(now).build())
    with open(path, "wb") as f:
        f.write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


class CrlTest(Base):
    """tls.crl_file: a registered client whose certificate a CRL lists is
    refused from the next reload on, without a restart; the others carry on."""

    def setUp(self):
        self.crl = os.path.join(Pki.dir(), "clients-%d.crl" % os.getpid())
        write_crl(self.crl)
        self.server_args = {"crl": self.crl}
        super().setUp()

    def test_revoked_client_refused_after_sighup(self):
        self.srv.wait_line(self.srv.err, r"tls: 1 CRL from ")
        self.roundtrip()
        # Sessions from before the revocation: TLS 1.2 (by session id) and
        # TLS 1.3 (by ticket), both in the server's cache.
        ctxs = (no_ticket_ctx(), client_ctx(tls_min=ssl.TLSVersion.TLSv1_3))
        sessions = [self.session_after(ctx, lambda s: None, r"closed by client") for ctx in ctxs]
        with connect(self.port, client_ctx()) as old:  # opened before the reload
            write_crl(self.crl, ["client"])
            mark = self.srv.mark()
            self.srv.proc.send_signal(signal.SIGHUP)
            self.srv.wait_line(self.srv.err, r"reloaded certificates and client registrations", mark)
            try:
                with connect(self.port, client_ctx()) as s:
                    s.sendall(frame(b"SHOULD-NOT-ECHO!"))
                    self.assertEqual(wait_closed(s), b"")
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                pass
            self.srv.wait_line(self.srv.err, r"client certificate /CN=\S+ is revoked "
                                             r"\(tls\.crl_file\)", mark)
            for ctx, session in zip(ctxs, sessions):  # resumption is no way back in
                self.assert_refused(ctx, self.srv.mark(), session, client_ctx("selfsigned"))
            self.roundtrip(client_ctx("selfsigned"))  # not on the CRL: served
            old.sendall(frame())  # established connections carry on, as for any reload
            self.assertEqual(read_frame(old), frame())
        # A file with no CRL in it is refused: the reload keeps the running settings.
        with open(self.crl, "w") as f:
            f.write("not a CRL\n")
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_line(self.srv.err, r"no CRL in the file", mark)
        self.srv.wait_line(self.srv.err, r"reload failed: keeping the running settings", mark)
        self.roundtrip(client_ctx("selfsigned"))


def make_client_cert(name, days_from, days_to, eku=("clientAuth",), self_signed=False,
                     signer_name="ca", ca=False, **ctx_args):
    """A client certificate valid from now+days_from to now+days_to, signed by
    |signer_name| (the test CA; made here too) or by itself, and a CA if |ca|;
    the file holds it and its signer's file unless that is the test CA.
    Returns the context of a client using it."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    if self_signed:
        issuer, signer = subject, key
    else:
        with open(Pki.path(signer_name + ".crt"), "rb") as f:
            signer_pem = f.read()
            issuer = x509.load_pem_x509_certificate(signer_pem).subject
        with open(Pki.path(signer_name + ".key"), "rb") as f:
            signer = serialization.load_pem_private_key(f.read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = {"clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
              "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH}
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.ExtendedKeyUsage([usages[u] for u in eku]), critical=False)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))
    base = os.path.join(Pki.dir(), name)
    with open(base + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        if not self_signed and signer_name != "ca":
            f.write(signer_pem)
    with open(base + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return client_ctx(name, **ctx_args)


class ClientCertValidityTest(Base):
    """Client certificates out of their validity dates, or not for client
    authentication, are refused, whether registered by CA or pinned."""
    server_args = {"ca_file": "ca.crt"}

    def test_by_ca(self):
        self.roundtrip(make_client_cert("ca-valid", -1, 1))
        for name, ctx in (("ca-expired", make_client_cert("ca-expired", -3, -1)),
                          ("ca-not-yet-valid", make_client_cert("ca-not-yet-valid", 1, 3)),
                          ("ca-server-only", make_client_cert("ca-server-only", -1, 1,
                                                              eku=("serverAuth",)))):
            with self.subTest(name):
                self.assert_refused(ctx, self.srv.mark())

    def test_pinned(self):
        for name, days in (("pin-expired", (-3, -1)), ("pin-not-yet-valid", (1, 3)),
                           ("pin-valid", (-1, 1))):
            make_client_cert(name, *days, self_signed=True)
            shutil.copy(Pki.path(name + ".crt"), self.srv.clients)
        mark = self.srv.mark()
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_line(self.srv.err, r"reloaded certificates and client registrations", mark)
        self.roundtrip(client_ctx("pin-valid"))
        for name in ("pin-expired", "pin-not-yet-valid"):
            with self.subTest(name):
                self.assert_refused(client_ctx(name), self.srv.mark())


class CaRegistrationTest(Base):
    """Registration by CA: any client of the registered CA, nobody else."""
    server_args = {"clients_dir": False, "ca_file": "ca.crt"}

    def test_ca_registered_clients(self):
        self.roundtrip(client_ctx("client"))
        self.roundtrip(client_ctx("client2"))
        self.assert_refused(client_ctx("stranger"), self.srv.mark())
        self.assert_refused(client_ctx("selfsigned"), self.srv.mark())

    def test_ca_registered_client_resumes(self):
        # A resumed handshake asks the registry again: the CA check passes
        # with the session's certificate, in TLS 1.2 and with a TLS 1.3 ticket.
        for ctx in (no_ticket_ctx(), client_ctx(tls_min=ssl.TLSVersion.TLSv1_3)):
            session = self.session_after(ctx, lambda s: None, r"closed by client after 1 req")
            self.assertTrue(self.resumes(ctx, session))

    def test_intermediate_ca_client_resumes(self):
        # The client's intermediate CA is not registered, only its root: the
        # check of a resumed session needs the chain the client sent, which
        # the server's session cache keeps (a stateless ticket would not:
        # keeld issued those before issue 7's profile, and this client made
        # full handshakes then).
        make_client_cert("inter-ca", -1, 9, ca=True)
        ctx = make_client_cert("via-inter", -1, 9, signer_name="inter-ca",
                               tls_min=ssl.TLSVersion.TLSv1_3)
        session = self.session_after(ctx, lambda s: None, r"closed by client after 1 req")
        self.assertTrue(self.resumes(ctx, session))


class LimitsTest(Base):
    server_args = {"limits": {"max_connections_per_client": 2, "max_connections": 3,
                              "idle_timeout_ms": 60000}}

    def test_per_client_and_total_limits(self):
        a = connect(self.port, client_ctx())
        b = connect(self.port, client_ctx())
        for s in (a, b):
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
        mark = self.srv.mark()
        c = connect(self.port, client_ctx())  # third for this identity
        self.assertEqual(wait_closed(c), b"")
        self.srv.wait_line(self.srv.err, r"max_connections_per_client", mark)
        d = connect(self.port, client_ctx("selfsigned"))  # another identity: fine
        d.sendall(frame())
        self.assertEqual(read_frame(d), frame())
        # Three open: the next is closed at accept, before any TLS.
        mark = self.srv.mark()
        raw = socket.create_connection(("127.0.0.1", self.port), GUARD)
        self.assertEqual(raw.recv(1), b"")
        self.srv.wait_line(self.srv.err, r"limits.max_connections reached", mark)
        for s in (a, d):  # the clients already in are still served
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
        for s in (a, b, d):
            s.close()


class IdleTest(Base):
    # Short, so the tests wait little; long enough under memcheck for the
    # server to answer the one request before its idle time runs out.
    server_args = {"limits": {"idle_timeout_ms": 200 * SLOW, "handshake_timeout_ms": 200 * SLOW}}

    def test_idle_connection_closed(self):
        mark = self.srv.mark()
        with connect(self.port, client_ctx()) as s:
            s.sendall(frame())
            self.assertEqual(read_frame(s), frame())
            self.assertEqual(wait_closed(s), b"")
        self.srv.wait_line(self.srv.err, r"idle timeout", mark)

    def test_idle_timeout_keeps_session(self):
        # b"" from recv: a close_notify came (a bare EOF raises SSLEOFError).
        ctx = no_ticket_ctx()
        session = self.session_after(ctx, lambda s: self.assertEqual(s.recv(1), b""),
                                     r"idle timeout")
        self.assertTrue(self.resumes(ctx, session))

    def test_stalled_handshake_closed(self):
        mark = self.srv.mark()
        raw = socket.create_connection(("127.0.0.1", self.port), GUARD)
        self.assertEqual(raw.recv(1), b"")  # we never sent a ClientHello
        self.srv.wait_line(self.srv.err, r"handshake timeout", mark)


class SlowlorisTest(Base):
    """Clients that send half a ClientHello and stall hold no slot for long,
    and cost the others nothing meanwhile."""
    server_args = {"limits": {"handshake_timeout_ms": 1000, "max_connections": 20,
                              "max_connections_per_client": 20}}

    def test_half_client_hello_closed_others_served(self):
        out = ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = out.read()
        self.assertEqual(hello[0], 0x16)  # a handshake record
        mark = self.srv.mark()
        stalled = []
        for _ in range(10):
            raw = socket.create_connection(("127.0.0.1", self.port), GUARD)
            raw.sendall(hello[:len(hello) // 2])
            stalled.append(raw)
        # While they stall, ten of the twenty slots are theirs: the others serve.
        for _ in range(3):
            self.roundtrip()
        for raw in stalled:
            self.assertEqual(wait_closed(raw), b"")
            raw.close()
        self.srv.wait_lines(self.srv.err, r"handshake timeout", 10, mark)
        self.roundtrip()


class MessageSizeTest(Base):
    server_args = {"limits": {"max_message_size": 4096}}

    def test_max_message_size(self):
        with connect(self.port, client_ctx()) as other:
            other.sendall(frame())
            self.assertEqual(read_frame(other), frame())
            self.roundtrip(body=b"x" * (4096 - 8))  # exactly the limit, header included
            # One byte over: closed on the header, the body never waited for.
            self.assert_closed_by_server(frame(b"", length=4096 - 8 + 1),
                                         r"over limits.max_message_size")
            other.sendall(frame())  # a connection already open carries on
            self.assertEqual(read_frame(other), frame())


class IdleOthersServedTest(Base):
    server_args = {"limits": {"idle_timeout_ms": 1000}}

    def test_idle_closed_while_busy_one_served(self):
        mark = self.srv.mark()
        idle = connect(self.port, client_ctx())
        busy = connect(self.port, client_ctx())
        peer = "127.0.0.1:%d: idle timeout" % idle.getsockname()[1]
        # The busy client asks again and again until the idle one is cut off:
        # each request restarts its own timer, so it is never closed.
        for n in range(100000):
            busy.sendall(frame(b"BUSY-%011d" % n))
            self.assertEqual(read_frame(busy), frame(b"BUSY-%011d" % n))
            if any(l and peer in l for l in self.srv.err[mark:]):
                break
        else:
            self.fail("the idle connection was never closed")
        self.assertEqual(wait_closed(idle), b"")
        busy.sendall(frame())
        self.assertEqual(read_frame(busy), frame())
        for s in (idle, busy):
            s.close()


@unittest.skipUnless(KEELD, "KEEL_KEELD not set")
class KeeldTest(unittest.TestCase):
    """keeld itself: options and config errors. keeld serving with its HSM
    and engine is tested in test_dev.py (keeld --dev)."""

    def test_help_and_version(self):
        self.assertIn(b"--config", subprocess.run([KEELD, "--help"], capture_output=True,
                                                  check=True).stdout)
        self.assertRegex(subprocess.run([KEELD, "--version"], capture_output=True,
                                        check=True).stdout, rb"^keeld \d+\.\d+")

    def test_bad_config_names_file_and_line(self):
        srv = Server(binary=KEELD, extra="limits2: { x = 1; };")
        try:
            self.assertEqual(srv.proc.wait(GUARD), 1)
            srv.wait_line(srv.err, re.escape(srv.conf) + r":7: unknown section limits2")
        finally:
            srv.stop()

    def test_journald_priority_prefixes(self):
        # Under systemd, JOURNAL_STREAM names stderr: lines carry "<N>" priorities.
        with tempfile.TemporaryFile() as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
            conf = os.path.join(Pki.dir(), "bogus.conf")
            with open(conf, "w") as f:
                f.write("bogus = 1;\n")
            rc = subprocess.run([KEELD, "--config", conf], stderr=err, env=env).returncode
            err.seek(0)
            text = err.read().decode()
        self.assertEqual(rc, 1)
        self.assertRegex(text, r"(?m)^<6>keeld .* starting")
        self.assertRegex(text, r"(?m)^<3>" + re.escape(conf) + r":1: unknown setting bogus")


if __name__ == "__main__":
    unittest.main()
