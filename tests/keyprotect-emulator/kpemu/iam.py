"""The IAM token endpoint (KEYPROTECT.md §1.1): the apikey grant, JWT-shaped
access tokens that expire on the emulator's clock, and their validation."""
import base64
import hashlib
import hmac
import json
import os
import threading
import urllib.parse

APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
TOKEN_PATHS = ("/identity/token", "/oidc/token")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Iam:
    def __init__(self, apikeys, lifetime, clock):
        self.apikeys = dict(apikeys)  # API key -> principal (iam_id)
        self.lifetime, self.clock = lifetime, clock
        self._secret = os.urandom(32)
        self._tokens = {}  # access token -> (principal, expiry)
        self._lock = threading.Lock()

    def grant(self, form_body):
        """(status, JSON document) for a token request's form body."""
        form = urllib.parse.parse_qs(form_body.decode("ascii", "replace"))
        grant = form.get("grant_type", [""])[0]
        apikey = form.get("apikey", [""])[0]
        if grant != APIKEY_GRANT:
            return 400, self._error("BXNIM0109E", "Property missing or empty.")
        principal = self.apikeys.get(apikey)
        if principal is None:
            return 400, self._error("BXNIM0415E", "Provided API key could not be found.")
        now = int(self.clock.now())
        claims = {"iam_id": principal, "sub": principal, "iat": now,
                  "exp": now + self.lifetime, "jti": _b64url(os.urandom(12))}
        token = self._sign(claims)
        with self._lock:
            self._tokens[token] = (principal, now + self.lifetime)
        return 200, {"access_token": token, "refresh_token": "not-used",
                     "token_type": "Bearer", "expires_in": self.lifetime,
                     "expiration": now + self.lifetime, "scope": "ibm openid"}

    def principal(self, authorization):
        """The principal behind an "Authorization: Bearer ..." header, or
        None when the token is unknown, revoked or expired."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            entry = self._tokens.get(authorization[len("Bearer "):])
        if entry is None or self.clock.now() >= entry[1]:
            return None
        return entry[0]

    def revoke_all(self):
        """Every token issued so far stops working (token expiry mid-sequence)."""
        with self._lock:
            self._tokens.clear()

    def _sign(self, claims):
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self._secret, ("%s.%s" % (head, body)).encode(), hashlib.sha256)
        return "%s.%s.%s" % (head, body, _b64url(mac.digest()))

    @staticmethod
    def _error(code, message):
        return {"errorCode": code, "errorMessage": message,
                "context": {"requestId": _b64url(os.urandom(9))}}
