"""The Key Protect API v2 routes (KEYPROTECT.md §2, §5.2). Each handler takes
the instance and a Request and returns (status, document or None, headers);
refusals are errors.KpError. The instance lock is held around each call."""
import json
import os
import re

from . import crypto, errors, model
from .clock import iso

WRAP_PLAINTEXT_MAX = 4096   # base64 characters (2019 spec WrapKey)
AAD_MAX, AAD_ITEM_MAX = 126, 255
LIST_DEFAULT, LIST_MAX = 200, 5000
VERSION_COLLECTION = "application/vnd.ibm.kms.key.version+json"


class Request:
    def __init__(self, method, path, query, headers, body, principal):
        self.method, self.path, self.query = method, path, query
        self.headers, self.body, self.principal = headers, body, principal

    def json(self, required=True):
        """The body as a JSON object; {} for an empty optional body."""
        if not self.body:
            if required:
                raise errors.KpError(400, "No request body", "NO_BODY_ERR",
                                     "A request body is required")
            return {}
        try:
            doc = json.loads(self.body)
        except ValueError as e:
            raise errors.bad_body("The body is not JSON") from e
        if not isinstance(doc, dict):
            raise errors.bad_body("The body must be a JSON object")
        return doc

    def prefer_representation(self):
        return "return=representation" in (self.headers.get("Prefer") or "")

    def arg(self, name, default=None):
        return self.query.get(name, [default])[0]


def wrapper(resources, collection=model.KEY_COLLECTION):
    return {"metadata": {"collectionType": collection, "collectionTotal": len(resources)},
            "resources": resources}


def _resource(req):
    """The single resource of a wrapper body, checked against its metadata."""
    doc = req.json()
    resources = doc.get("resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], dict):
        raise errors.bad_body("The body must hold one resource", "resources")
    total = doc.get("metadata", {}).get("collectionTotal") if isinstance(
        doc.get("metadata"), dict) else None
    if total != len(resources):
        raise errors.KpError(400, "The collection total does not match",
                             "COLLECTION_TOTAL_MISMATCH_ERR",
                             "collectionTotal does not match the number of resources")
    if len(resources) != 1:
        raise errors.bad_body("One key per request", "resources")
    return resources[0]


def _key_spec(res, with_policies):
    name = res.get("name")
    if not isinstance(name, str) or not 2 <= len(name) <= 90:
        raise errors.invalid_field("name", "name must be 2 to 90 characters")
    aliases = res.get("aliases", [])
    if not isinstance(aliases, list) or len(aliases) > model.MAX_ALIASES or not all(
            isinstance(a, str) and 2 <= len(a) <= 90 for a in aliases):
        raise errors.invalid_field("aliases", "at most 5 aliases of 2 to 90 characters")
    spec = {"name": name, "description": res.get("description"), "aliases": aliases,
            "extractable": res.get("extractable", False) is True}
    if res.get("expirationDate"):
        spec["expiration"] = model.parse_expiration(res["expirationDate"])
    if with_policies:
        spec["dualAuthDelete"] = (res.get("dualAuthDelete") or {}).get("enabled") is True
    for field in ("payload", "encryptedNonce", "iv", "encryptionAlgorithm"):
        if field in res:
            spec[field] = res[field]
    return spec


def create_key(inst, req, with_policies=False):
    spec = _key_spec(_resource(req), with_policies)
    key = inst.create(spec, req.principal)
    return 201, wrapper([inst.view(key, req.prefer_representation())]), {}


def _int_arg(req, name, default, low, high):
    text = req.arg(name)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise errors.invalid_query(name, "%s must be an integer from %d to %d" % (name, low, high))
    return int(text)


def _list_filters(req):
    states_text = req.arg("state", "0,1,2,3")
    if not re.fullmatch(r"[0-5](,[0-5])*", states_text):
        raise errors.invalid_query("state", "state must be integers 0 to 5 separated by commas")
    extractable = req.arg("extractable")
    if extractable not in (None, "true", "false"):
        raise errors.invalid_query("extractable", "extractable must be true or false")
    states = {int(s) for s in states_text.split(",")}
    return states, None if extractable is None else extractable == "true"


def _search_matches(search):
    """A predicate for ?search= (KEYPROTECT.md §2 "List paging"): the
    prefixes not:, escape:, exact:, alias: and name:, in that order."""
    negate = search.startswith("not:")
    search = search[4:] if negate else search
    escaped = search.startswith("escape:")
    search = search[7:] if escaped else search
    exact = not escaped and search.startswith("exact:")
    search = search[6:] if exact else search
    scopes = set()
    while not escaped and search.startswith(("alias:", "name:")):
        scope, _, search = search.partition(":")
        scopes.add(scope)
    scopes = scopes or {"alias", "name"}

    def hit(text):
        return text == search if exact else search.lower() in text.lower()

    def match(key):
        found = ("name" in scopes and hit(key.name)) or (
            "alias" in scopes and any(hit(a) for a in key.aliases))
        return found != negate
    return match


SORT_FIELDS = {"id": "id", "state": "state", "extractable": "extractable",
               "imported": "imported", "creationDate": "created",
               "lastUpdateDate": "updated", "lastRotateDate": "last_rotate",
               "deletionDate": "deleted_at", "expirationDate": "expiration"}


def _selected(inst, req):
    states, extractable = _list_filters(req)
    keys = inst.listing(states, extractable)
    if req.arg("search"):
        keys = [k for k in keys if _search_matches(req.arg("search"))(k)]
    sort = req.arg("sort")
    if sort:
        field = SORT_FIELDS.get(sort.lstrip("-"))
        if field is None:
            raise errors.invalid_query("sort", "unknown sort field")
        keys.sort(key=lambda k: (getattr(k, field) is None, getattr(k, field) or 0),
                  reverse=sort.startswith("-"))
    return keys


def list_keys(inst, req):
    limit = _int_arg(req, "limit", LIST_DEFAULT, 1, LIST_MAX)
    offset = _int_arg(req, "offset", 0, 0, 10**9)
    page = _selected(inst, req)[offset:offset + limit]
    return 200, wrapper([inst.view(k) for k in page]), {}


def count_keys(inst, req):
    return 200, None, {"Key-Total": str(len(_selected(inst, req)))}


def get_key(inst, req, key_id):
    return 200, wrapper([inst.view(inst.find(key_id), with_payload=True)]), {}


def get_metadata(inst, req, key_id):
    return 200, wrapper([inst.view(inst.find(key_id))]), {}


def delete_key(inst, req, key_id):
    key = inst.delete(key_id, req.principal)
    if req.prefer_representation():
        return 200, wrapper([inst.view(key)]), {}
    return 204, None, {}


def restore_key(inst, req, key_id):
    return 201, wrapper([inst.view(inst.restore(key_id))]), {}


def purge_key(inst, req, key_id):
    key = inst.purge(key_id)
    return 200, wrapper([{"type": model.KEY_COLLECTION, "id": key.id, "name": key.name,
                          "state": model.DESTROYED, "deleted": True}]), {}


def key_versions(inst, req, key_id):
    key = inst.find(key_id)
    limit = _int_arg(req, "limit", LIST_DEFAULT, 1, LIST_MAX)
    offset = _int_arg(req, "offset", 0, 0, 10**9)
    if req.arg("allKeyStates") != "true" and key.state_at(inst.clock.now()) != model.ACTIVE:
        raise errors.invalid_state("list versions")
    newest_first = list(reversed(key.versions))
    doc = wrapper([{"id": v.id, "creationDate": iso(v.created)}
                   for v in newest_first[offset:offset + limit]], VERSION_COLLECTION)
    if req.arg("totalCount") == "true":
        doc["metadata"]["totalCount"] = len(newest_first)
    return 200, doc, {}


def _aad(doc):
    aad = doc.get("aad")
    if aad is None:
        return None
    if not isinstance(aad, list) or len(aad) > AAD_MAX or not all(
            isinstance(a, str) and len(a) <= AAD_ITEM_MAX for a in aad):
        raise errors.invalid_field("aad", "aad is at most 126 strings of at most 255 characters")
    return aad


def _ciphertext(doc):
    ct = doc.get("ciphertext")
    if not isinstance(ct, str) or not ct:
        raise errors.bad_body("ciphertext is required", "ciphertext")
    return ct


def action_wrap(inst, req, key_id):
    doc = req.json(required=False)
    aad, plaintext = _aad(doc), doc.get("plaintext")
    generated = plaintext is None
    if generated:
        dek = os.urandom(32)
    else:
        if not isinstance(plaintext, str) or len(plaintext) > WRAP_PLAINTEXT_MAX:
            raise errors.invalid_field("plaintext", "plaintext is at most 4096 base64 characters")
        try:
            dek = crypto.b64d(plaintext)
        except ValueError as e:
            raise errors.bad_body("plaintext must be base64", "plaintext") from e
    ciphertext, version = inst.wrap(key_id, dek, aad)
    out = {"ciphertext": ciphertext, "keyVersion": {"id": version.id}}
    if generated:
        out["plaintext"] = crypto.b64e(dek)
    return 200, out, {}


def action_unwrap(inst, req, key_id):
    doc = req.json()
    aad = _aad(doc)
    dek, version, key = inst.unwrap(key_id, _ciphertext(doc), aad)
    out = {"plaintext": crypto.b64e(dek), "keyVersion": {"id": version.id}}
    if version is not key.current():  # opened by an older version: hand back a fresh copy
        out["ciphertext"] = crypto.wrap(key.current().material, key.current().id, dek, aad)
        out["rewrappedKeyVersion"] = {"id": key.current().id}
    return 200, out, {}


def action_rewrap(inst, req, key_id):
    doc = req.json()
    aad = _aad(doc)
    dek, version, key = inst.unwrap(key_id, _ciphertext(doc), aad, "rewrap")
    current = key.current()
    return 200, {"ciphertext": crypto.wrap(current.material, current.id, dek, aad),
                 "keyVersion": {"id": version.id},
                 "rewrappedKeyVersion": {"id": current.id}}, {}


def action_rotate(inst, req, key_id):
    inst.rotate(key_id, req.json(required=False))
    return 204, None, {}


def action_disable(inst, req, key_id):
    inst.disable(key_id)
    return 204, None, {}


def action_enable(inst, req, key_id):
    inst.enable(key_id)
    return 204, None, {}


def action_set_for_deletion(inst, req, key_id):
    inst.set_for_deletion(key_id, req.principal, True)
    return 204, None, {}


def action_unset_for_deletion(inst, req, key_id):
    inst.set_for_deletion(key_id, req.principal, False)
    return 204, None, {}


ACTIONS = {"wrap": action_wrap, "unwrap": action_unwrap, "rewrap": action_rewrap,
           "rotate": action_rotate, "disable": action_disable, "enable": action_enable,
           "setKeyForDeletion": action_set_for_deletion,
           "unsetKeyForDeletion": action_unset_for_deletion}


def key_action(inst, req, key_id, action):
    handler = ACTIONS.get(action)
    if handler is None:
        raise errors.invalid_query("action", "unknown action")
    return handler(inst, req, key_id)


def legacy_action(inst, req, key_id):
    """POST /keys/{id}?action=x, the 2019 spec's actionOnKey."""
    return key_action(inst, req, key_id, req.arg("action", ""))


def post_import_token(inst, req):
    doc = req.json(required=False)
    expiration, retrievals = doc.get("expiration", 600), doc.get("maxAllowedRetrievals", 1)
    if not isinstance(expiration, int) or not 300 <= expiration <= 86400:
        raise errors.invalid_field("expiration", "expiration is 300 to 86400 seconds")
    if not isinstance(retrievals, int) or not 1 <= retrievals <= 500:
        raise errors.invalid_field("maxAllowedRetrievals", "maxAllowedRetrievals is 1 to 500")
    return 200, inst.create_import_token(expiration, retrievals), {}


def get_import_token(inst, req):
    return 200, inst.retrieve_import_token(), {}


def add_alias(inst, req, key_id, alias):
    key = inst.add_alias(key_id, alias)
    return 201, wrapper([{"keyId": key.id, "alias": alias,
                          "creationDate": iso(inst.clock.now()),
                          "createdBy": req.principal}],
                        "application/vnd.ibm.kms.alias+json"), {}


def delete_alias(inst, req, key_id, alias):
    key = inst.find(key_id)
    if alias not in key.aliases:
        raise errors.KpError(404, "Alias could not be deleted", "ALIAS_NOT_FOUND_ERR",
                             "alias does not exist")
    key.aliases.remove(alias)
    return 204, None, {}


def put_policy(inst, req, key_id):
    if req.arg("policy") != "dualAuthDelete":
        raise errors.invalid_query("policy", "only the dualAuthDelete policy is emulated")
    res = _resource(req)
    if (res.get("dualAuthDelete") or {}).get("enabled") is not True:
        raise errors.invalid_field("dualAuthDelete", "a dual authorization policy cannot "
                                   "be turned off")
    inst.enable_dual_auth(key_id)
    return 200, wrapper([{"type": "application/vnd.ibm.kms.policy+json",
                          "dualAuthDelete": {"enabled": True}}],
                        "application/vnd.ibm.kms.policy+json"), {}


KEY = r"/api/v2/keys/(?P<key_id>[^/?]+)"
ROUTES = [
    ("POST", r"/api/v2/keys", create_key),
    ("POST", r"/api/v2/keys_with_policy_overrides",
     lambda inst, req: create_key(inst, req, with_policies=True)),
    ("GET", r"/api/v2/keys", list_keys),
    ("HEAD", r"/api/v2/keys", count_keys),
    ("POST", r"/api/v2/import_token", post_import_token),
    ("GET", r"/api/v2/import_token", get_import_token),
    ("GET", KEY, get_key),
    ("GET", KEY + r"/metadata", get_metadata),
    ("DELETE", KEY, delete_key),
    ("DELETE", KEY + r"/purge", purge_key),
    ("POST", KEY + r"/restore", restore_key),
    ("GET", KEY + r"/versions", key_versions),
    ("POST", KEY + r"/actions/(?P<action>[A-Za-z]+)", key_action),
    ("POST", KEY, legacy_action),
    ("POST", KEY + r"/aliases/(?P<alias>[^/]+)", add_alias),
    ("DELETE", KEY + r"/aliases/(?P<alias>[^/]+)", delete_alias),
    ("PUT", KEY + r"/policies", put_policy),
]
COMPILED = [(m, re.compile(p + r"\Z"), h) for m, p, h in ROUTES]


def route(method, path):
    """(handler, path parameters), or None when no route matches."""
    for m, rx, handler in COMPILED:
        match = rx.match(path)
        if match and m == method:
            return handler, match.groupdict()
    return None
