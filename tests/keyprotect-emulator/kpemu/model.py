"""One Key Protect instance: keys, their versions and states, the import
token, and every rule of KEYPROTECT.md §2-§3 that an operation must check.
Callers hold Instance.lock; every method raises errors.KpError on refusal and
changes nothing then."""
import os
import threading
import uuid

from . import crypto, errors
from .clock import iso, parse_iso

HOUR, DAY = 3600, 86400
ROTATE_INTERVAL = HOUR       # one rotate per key per hour (F16)
SETTLE = 30                  # enable and restore wait 30 s after the last action (F20)
PURGE_AFTER = 4 * HOUR
RESTORE_WINDOW = 30 * DAY
DUAL_AUTH_WINDOW = 7 * DAY
ROOT_SIZES = (16, 24, 32)
STANDARD_MAX = 7500
MAX_ALIASES = 5
KEY_COLLECTION = "application/vnd.ibm.kms.key+json"
ACTIVE, SUSPENDED, DEACTIVATED, DESTROYED = 1, 2, 3, 5


class Version:
    def __init__(self, material, created):
        self.id, self.material, self.created = str(uuid.uuid4()), material, created


class Key:
    def __init__(self, spec, material, imported, principal, now):
        self.id = str(uuid.uuid4())
        self.name, self.description = spec["name"], spec.get("description")
        self.extractable, self.imported = spec["extractable"], imported
        self.expiration = spec.get("expiration")
        self.aliases, self.state = list(spec.get("aliases", [])), ACTIVE
        self.created = self.updated = self.last_action = now
        self.created_by, self.last_rotate = principal, None
        self.versions = [Version(material, now)]  # newest last
        self.dual_auth = bool(spec.get("dualAuthDelete"))
        self.deletion_auth = None  # (principal, expires) after setKeyForDeletion
        self.deleted_at = self.deleted_by = None

    def current(self):
        return self.versions[-1]

    def state_at(self, now):
        """The state, with expiry (state 3) applied as the clock passes it."""
        if self.state in (ACTIVE, SUSPENDED) and self.expiration and now >= self.expiration:
            return DEACTIVATED
        return self.state


class ImportToken:
    def __init__(self, expiration, retrievals, now):
        self.keys, self.nonce = crypto.ImportKeyPair(), os.urandom(12)
        self.created, self.expires = now, now + expiration
        self.max_retrievals = self.remaining = retrievals

    def view(self, with_secret_parts):
        doc = {"creationDate": iso(self.created), "expirationDate": iso(self.expires),
               "maxAllowedRetrievals": self.max_retrievals,
               "remainingRetrievals": self.remaining}
        if with_secret_parts:
            doc["payload"] = crypto.b64e(self.keys.public_pem())
            doc["nonce"] = crypto.b64e(self.nonce)
        return doc


def _expired_token():
    return errors.KpError(409, "Import Token could not be retrieved",
                          "IMPORT_TOKEN_EXPIRED_ERR", "The import token has expired.")


class Instance:
    def __init__(self, instance_id, region, clock):
        self.id, self.region, self.clock = instance_id, region, clock
        self.account = "f047b55a3362ac06afad8a3f2f5586ea"
        self.keys = {}  # id -> Key, in creation order
        self.import_token = None
        self.lock = threading.Lock()

    # ---- lookup --------------------------------------------------------

    def find(self, id_or_alias):
        """The key by id or alias; 404 when there is none (or it was purged)."""
        key = self.keys.get(id_or_alias)
        if key is None:
            key = next((k for k in self.keys.values() if id_or_alias in k.aliases), None)
        if key is None:
            raise errors.not_found()
        return key

    def live(self, id_or_alias, action, allowed=(ACTIVE,)):
        """The key, checked to be in one of the states that allow action."""
        key = self.find(id_or_alias)
        state = key.state_at(self.clock.now())
        if state == DESTROYED:
            raise errors.gone(action)
        if state not in allowed:
            raise errors.invalid_state(action)
        return key

    def root(self, id_or_alias, action, allowed=(ACTIVE,)):
        key = self.live(id_or_alias, action, allowed)
        if key.extractable:
            raise errors.root_required(action)
        return key

    # ---- views ---------------------------------------------------------

    def view(self, key, with_payload=False):
        now, v = self.clock.now(), key.current()
        doc = {"type": KEY_COLLECTION, "id": key.id, "name": key.name,
               "aliases": key.aliases, "state": key.state_at(now),
               "extractable": key.extractable, "imported": key.imported,
               "crn": "crn:v1:bluemix:public:kms:%s:a/%s:%s:key:%s" % (
                   self.region, self.account, self.id, key.id),
               "creationDate": iso(key.created), "createdBy": key.created_by,
               "algorithmType": "AES", "algorithmMetadata": {
                   "bitLength": str(len(v.material) * 8), "mode": "CBC_PAD"},
               "algorithmBitSize": len(v.material) * 8, "algorithmMode": "CBC_PAD",
               "lastUpdateDate": iso(key.updated), "keyRingID": "default",
               "keyVersion": {"id": v.id, "creationDate": iso(v.created)},
               "dualAuthDelete": self._dual_auth_view(key, now),
               "deleted": key.state == DESTROYED}
        optional = {"description": key.description,
                    "expirationDate": key.expiration and iso(key.expiration),
                    "lastRotateDate": key.last_rotate and iso(key.last_rotate)}
        doc.update({k: v for k, v in optional.items() if v})
        if key.state == DESTROYED:
            doc.update(self._deletion_view(key, now))
        if with_payload and key.extractable and key.state != DESTROYED:
            doc["payload"] = crypto.b64e(v.material)
        return doc

    @staticmethod
    def _dual_auth_view(key, now):
        doc = {"enabled": key.dual_auth}
        if key.dual_auth:
            auth = key.deletion_auth if key.deletion_auth and key.deletion_auth[1] > now else None
            doc["keySetForDeletion"] = auth is not None
            if auth:
                doc["authExpiration"] = iso(auth[1])
        return doc

    @staticmethod
    def _deletion_view(key, now):
        return {"deletionDate": iso(key.deleted_at), "deletedBy": key.deleted_by,
                "restoreExpirationDate": iso(key.deleted_at + RESTORE_WINDOW),
                "restoreAllowed": now < key.deleted_at + RESTORE_WINDOW,
                "purgeAllowed": now >= key.deleted_at + PURGE_AFTER,
                "purgeAllowedFrom": iso(key.deleted_at + PURGE_AFTER),
                "purgeScheduledOn": iso(key.deleted_at + 90 * DAY)}

    # ---- import token --------------------------------------------------

    def create_import_token(self, expiration, retrievals):
        self.import_token = ImportToken(expiration, retrievals, self.clock.now())
        return self.import_token.view(False)

    def retrieve_import_token(self):
        token = self.import_token
        if token is None:
            raise errors.KpError(404, "Import Token could not be retrieved",
                                 "IMPORT_TOKEN_NOT_FOUND_ERR", "import token does not exist")
        if token.remaining <= 0 or self.clock.now() >= token.expires:
            raise _expired_token()
        token.remaining -= 1
        return token.view(True)

    def _secure_material(self, fields):
        """Material from {payload, encryptedNonce, iv, encryptionAlgorithm}
        (KEYPROTECT.md §2 "Secure import"), checked against the import token."""
        token = self.import_token
        if token is None or self.clock.now() >= token.expires:
            raise _expired_token()
        if fields.get("encryptionAlgorithm", "RSAES_OAEP_SHA_256") != "RSAES_OAEP_SHA_256":
            raise errors.invalid_field("encryptionAlgorithm", "must be RSAES_OAEP_SHA_256")
        try:
            wrapped, enc_nonce, iv = (crypto.b64d(fields.get(n))
                                      for n in ("payload", "encryptedNonce", "iv"))
        except ValueError as e:
            raise errors.bad_body("payload, encryptedNonce and iv must be base64") from e
        if len(iv) != 12:
            raise errors.KpError(400, "The nonce IV is invalid", "INCORRECT_NONCE_IV_ERR",
                                 "The IV must be 12 bytes", "iv")
        material = token.keys.decrypt(wrapped)
        if material is None or not crypto.nonce_matches(material, iv, enc_nonce, token.nonce):
            raise errors.KpError(400, "The nonce is incorrect", "INCORRECT_NONCE_ERR",
                                 "The encrypted nonce does not match the import token",
                                 "encryptedNonce")
        return material

    # ---- keys ----------------------------------------------------------

    def material_for(self, fields, extractable):
        """(material, imported) for a create or rotate request's fields."""
        if "encryptedNonce" in fields or "iv" in fields:
            material = self._secure_material(fields)
        elif "payload" in fields:
            try:
                material = crypto.b64d(fields["payload"])
            except ValueError as e:
                raise errors.bad_body("payload must be base64", "payload") from e
        else:
            return os.urandom(32), False
        if extractable and not 0 < len(material) <= STANDARD_MAX:
            raise errors.invalid_field("payload", "a standard key holds 1 to 7500 bytes")
        if not extractable and len(material) not in ROOT_SIZES:
            raise errors.invalid_field("payload", "a root key is 16, 24 or 32 bytes")
        return material, True

    def check_aliases_free(self, aliases):
        if any(a in k.aliases for k in self.keys.values() for a in aliases):
            raise errors.KpError(409, "Alias could not be created", "DUPLICATE_ALIAS_ERR",
                                 "The alias is already in use")

    def create(self, spec, principal):
        self.check_aliases_free(spec["aliases"])
        material, imported = self.material_for(spec, spec["extractable"])
        key = Key(spec, material, imported, principal, self.clock.now())
        self.keys[key.id] = key
        return key

    def listing(self, states, extractable):
        now = self.clock.now()
        return [k for k in self.keys.values() if k.state_at(now) in states
                and (extractable is None or k.extractable == extractable)]

    def delete(self, key_id, principal):
        key = self.find(key_id)
        now = self.clock.now()
        if key.state == DESTROYED:
            raise errors.KpError(410, "Key could not be deleted", "KEY_DELETED_ERR",
                                 "The key has already been deleted")
        if key.dual_auth:
            auth = key.deletion_auth
            if auth is None or auth[1] <= now or auth[0] == principal:
                raise errors.KpError(409, "1 prior authorization(s) are required for deletion",
                                     "AUTHORIZATIONS_NOT_MET",
                                     "Number of authorizations required to delete is not met")
        key.state, key.deleted_at, key.deleted_by = DESTROYED, now, principal
        key.updated = key.last_action = now
        return key

    def restore(self, key_id):
        key = self.find(key_id)
        now = self.clock.now()
        if key.state != DESTROYED:
            raise errors.invalid_state("restore")
        if now >= key.deleted_at + RESTORE_WINDOW:
            raise errors.KpError(400, "Key could not be restored", "KEY_RESTORE_EXPIRED",
                                 "The key was deleted more than 30 days ago")
        if key.expiration and now >= key.expiration:
            raise errors.KpError(400, "Key could not be restored", "KEY_EXPIRED_ERR",
                                 "The key has expired")
        if now < key.last_action + SETTLE:
            raise errors.too_early("restored")
        key.state, key.deleted_at, key.deleted_by = ACTIVE, None, None
        key.updated = key.last_action = now
        return key

    def purge(self, key_id):
        key = self.find(key_id)
        if key.state != DESTROYED:
            raise errors.invalid_state("purge")
        if self.clock.now() < key.deleted_at + PURGE_AFTER:
            raise errors.too_early("purged")
        del self.keys[key.id]
        return key

    # ---- actions -------------------------------------------------------

    def wrap(self, key_id, dek, aad):
        key = self.root(key_id, "wrap")
        v = key.current()
        return crypto.wrap(v.material, v.id, dek, aad), v

    def unwrap(self, key_id, ciphertext, aad, action="unwrap"):
        """(dek, version that opened it, key): the handle's version first,
        then every version of the key, so that a key holding the same
        material as another can open its ciphertexts."""
        key = self.root(key_id, action, (ACTIVE, DEACTIVATED))
        try:
            handle, iv, ct = crypto.parse_ciphertext(ciphertext)
        except ValueError as e:
            raise errors.unprocessable_ciphertext() from e
        ordered = sorted(key.versions, key=lambda v: v.id != handle)
        for v in ordered:
            dek = crypto.unwrap_with(v.material, iv, ct, aad)
            if dek is not None:
                return dek, v, key
        raise errors.unprocessable_ciphertext()

    def rotate(self, key_id, fields):
        key = self.root(key_id, "rotate", (ACTIVE, DEACTIVATED))
        now = self.clock.now()
        if key.imported and "payload" not in fields:
            raise errors.KpError(
                400, "Action could not be performed on key", "KEY_PAYLOAD_REQ_ERR",
                "This root key was created with user-supplied key material: Key material "
                "is required to perform a 'rotate' action", "payload")
        if not key.imported and "payload" in fields:
            raise errors.KpError(
                400, "Action could not be performed on key", "KEY_IMPT_REQ_ERR",
                "This root key was generated by Key Protect: key material cannot be "
                "supplied to a 'rotate' action", "payload")
        if key.last_rotate is not None and now < key.last_rotate + ROTATE_INTERVAL:
            raise errors.KpError(
                409, "Action could not be performed on key", "KEY_ROTATION_NOT_PERMITTED",
                "This root key has been rotated within the last hour: Only one 'rotate' "
                "action per hour is permitted")
        material, _ = self.material_for(fields, False)
        key.versions.append(Version(material, now))
        key.last_rotate = key.updated = key.last_action = now

    def disable(self, key_id):
        key = self.root(key_id, "disable")
        key.state, key.updated = SUSPENDED, self.clock.now()
        key.last_action = key.updated

    def enable(self, key_id):
        key = self.root(key_id, "enable", (SUSPENDED,))
        now = self.clock.now()
        if now < key.last_action + SETTLE:
            raise errors.too_early("enabled")
        key.state, key.updated, key.last_action = ACTIVE, now, now

    def set_for_deletion(self, key_id, principal, on):
        key = self.live(key_id, "setKeyForDeletion")
        if not key.dual_auth:
            raise errors.KpError(409, "Action could not be performed on key",
                                 "NOT_DUAL_AUTH_ERR",
                                 "The key does not have a dual authorization policy")
        now = self.clock.now()
        key.deletion_auth = (principal, now + DUAL_AUTH_WINDOW) if on else None
        key.updated = now

    def enable_dual_auth(self, key_id):
        key = self.live(key_id, "setPolicy")
        key.dual_auth, key.updated = True, self.clock.now()
        return key

    def add_alias(self, key_id, alias):
        key = self.live(key_id, "alias")
        if alias in key.aliases:
            return key
        if len(key.aliases) >= MAX_ALIASES:
            raise errors.invalid_field("alias", "a key has at most 5 aliases")
        self.check_aliases_free([alias])
        key.aliases.append(alias)
        return key


def parse_expiration(text):
    try:
        return parse_iso(text)
    except (TypeError, ValueError) as e:
        raise errors.invalid_field("expirationDate", "must be RFC 3339 in UTC") from e
