"""HTTPS plumbing: one threaded server for IAM, Key Protect and the control
endpoint (/_emulator/...), with fault injection in front of the first two."""
import http.server
import json
import re
import socket
import threading
import urllib.parse
import uuid

from . import api, errors, iam

MAX_BODY = 1 << 20
CONTROL = "/_emulator/"


class Faults:
    """Rules a test installs through POST /_emulator/faults; each applies to
    the next `count` requests whose method and path match, first rule first:
    {"status": 429|500|503|..., "retryAfter": s} answers that status,
    {"drop": true} closes the connection without an answer.
    pause() holds every request (not the control endpoint) until resume(), or
    until its own timer runs out: the service "stops for a minute" on its own
    (real seconds: keeld's retries run on the real clock)."""

    def __init__(self):
        self._rules, self._paused, self._timer = [], False, None
        self._cv = threading.Condition()

    def add(self, rule):
        if not isinstance(rule, dict) or not (rule.get("drop") is True or isinstance(
                rule.get("status"), int)):
            raise ValueError("a fault needs \"status\" or \"drop\": true")
        rule = dict(rule, count=int(rule.get("count", 1)), rx=re.compile(rule.get("path", "")))
        with self._cv:
            self._rules.append(rule)

    def clear(self):
        with self._cv:
            self._rules.clear()

    def take(self, method, path):
        """The rule to apply to this request, or None."""
        with self._cv:
            while self._paused:
                self._cv.wait()
            for rule in self._rules:
                if rule["count"] > 0 and rule["rx"].search(path) and rule.get(
                        "method", method) == method:
                    rule["count"] -= 1
                    return rule
        return None

    def pause(self, on, seconds=None):
        if seconds is not None and not 0 < seconds <= 3600:
            raise ValueError("\"seconds\" must be in (0, 3600]")
        with self._cv:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if on and seconds is not None:
                self._timer = threading.Timer(seconds, self.pause, (False,))
                self._timer.daemon = True
                self._timer.start()
            self._paused = on
            self._cv.notify_all()

    def paused(self):
        with self._cv:
            return self._paused

    def pending(self):
        with self._cv:
            return sum(r["count"] for r in self._rules)


class Emulator:
    """What the handler threads share."""

    def __init__(self, instance, iam_service, clock):
        self.instance, self.iam, self.clock = instance, iam_service, clock
        self.faults = Faults()
        self.log, self._log_lock = [], threading.Lock()

    def record(self, method, path, status):
        with self._log_lock:
            self.log.append({"method": method, "path": path, "status": status})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kpemu/1"
    emu = None  # set by make_server

    def log_message(self, fmt, *args):  # the request log is /_emulator/log, not stderr
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _serve(self):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        body = self._read_body()
        if body is None:
            return
        if path.startswith(CONTROL):
            return self._answer(*self._control(path[len(CONTROL):], body))
        rule = self.emu.faults.take(self.command, path)
        if rule and rule.get("drop"):
            self.emu.record(self.command, path, 0)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule:
            err = errors.too_many_requests() if rule["status"] == 429 else errors.KpError(
                rule["status"], "The service is temporarily unavailable")
            headers = {"Retry-After": str(rule["retryAfter"])} if "retryAfter" in rule else {}
            return self._finish(path, err.status, err.body(), headers)
        if path in iam.TOKEN_PATHS and self.command == "POST":
            status, doc = self.emu.iam.grant(body)
            return self._finish(path, status, json.dumps(doc).encode(), {})
        self._key_protect(path, query, body)

    def _key_protect(self, path, query, body):
        found = api.route(self.command, path)
        try:
            if found is None:
                raise errors.KpError(404, "The resource could not be found",
                                     "RESOURCE_NOT_FOUND_ERR", "no such route")
            principal = self.emu.iam.principal(self.headers.get("Authorization"))
            if principal is None or self.headers.get(
                    "Bluemix-Instance") != self.emu.instance.id:
                raise errors.unauthorized()
            req = api.Request(self.command, path, query, self.headers, body, principal)
            handler, params = found
            with self.emu.instance.lock:
                status, doc, headers = handler(self.emu.instance, req, **params)
            out = b"" if doc is None else json.dumps(doc).encode()
        except errors.KpError as e:
            status, out, headers = e.status, e.body(), {}
        self._finish(path, status, out, headers)

    def _finish(self, path, status, out, headers):
        self.emu.record(self.command, path, status)
        cid = self.headers.get("Correlation-Id") or str(uuid.uuid4())
        self._answer(status, out, dict(headers, **{"Correlation-Id": cid}))

    def _answer(self, status, out, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if out:
            self.send_header("Content-Type", "application/json")
        if status != 204:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(out)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding"):
            self._answer(400, errors.bad_body("chunked bodies are not accepted").body())
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._answer(400, errors.bad_body("bad Content-Length").body())
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _control(self, what, body):
        """(status, body) of a control request; see ../README.md."""
        emu = self.emu
        try:
            doc = json.loads(body) if body else {}
            if what == "faults" and self.command == "POST":
                emu.faults.add(doc)
            elif what == "faults" and self.command == "DELETE":
                emu.faults.clear()
            elif what in ("pause", "resume") and self.command == "POST":
                seconds = doc.get("seconds")
                emu.faults.pause(what == "pause",
                                 float(seconds) if seconds is not None else None)
            elif what == "pause" and self.command == "GET":
                pass  # the answer below says whether it is paused
            elif what == "clock" and self.command == "POST":
                emu.clock.advance(float(doc.get("advance", 0)))
            elif what == "expire-tokens" and self.command == "POST":
                emu.iam.revoke_all()
            elif what == "log" and self.command == "GET":
                with emu._log_lock:
                    return 200, json.dumps(emu.log).encode()
            elif what == "keys" and self.command == "GET":
                with emu.instance.lock:
                    keys = [dict(emu.instance.view(k), versions=len(k.versions))
                            for k in emu.instance.keys.values()]
                return 200, json.dumps(keys).encode()
            else:
                return 404, b'{"error":"unknown control request"}'
        except (ValueError, TypeError) as e:
            return 400, json.dumps({"error": str(e)}).encode()
        return 200, json.dumps({"now": emu.clock.now(), "paused": emu.faults.paused(),
                                "pendingFaults": emu.faults.pending()}).encode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # A TLS handshake or a client that hangs up is that client's problem.
    def handle_error(self, request, client_address):
        pass


def make_server(emulator, port, ssl_context):
    handler = type("BoundHandler", (Handler,), {"emu": emulator})
    server = Server(("127.0.0.1", port), handler)
    server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    return server
