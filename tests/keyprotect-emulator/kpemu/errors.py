"""Key Protect's error bodies (KEYPROTECT.md §3.5, fixtures F15-F23)."""
import json

MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"
REASON_PHRASES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    409: "Conflict", 410: "Gone", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}
ERROR_COLLECTION = "application/vnd.ibm.kms.error+json"


class KpError(Exception):
    """One failed request: the HTTP status, and either a reason code with its
    message (the usual shape) or a bare errorMsg (401, 410, 429 have no reasons)."""

    def __init__(self, status, summary, code=None, message=None, target=None):
        super().__init__(summary)
        self.status, self.summary = status, summary
        self.code, self.message, self.target = code, message, target

    def body(self):
        phrase = REASON_PHRASES.get(self.status, "Error")
        resource = {"errorMsg": "%s: %s" % (phrase, self.summary)}
        if self.code:
            resource["errorMsg"] += ": Please see `reasons` for more details (%s)" % self.code
            reason = {"code": self.code, "message": self.message, "status": self.status,
                      "moreInfo": MORE_INFO}
            if self.target:
                reason["target"] = {"type": "field", "name": self.target}
            resource["reasons"] = [reason]
        return json.dumps({"metadata": {"collectionType": ERROR_COLLECTION,
                                        "collectionTotal": 1},
                           "resources": [resource]}).encode()


def bad_body(message, target=None):
    return KpError(400, "The request body is invalid", "BAD_BODY_ERR", message, target)


def invalid_field(name, message):
    return KpError(400, "The field is invalid", "INVALID_FIELD_ERR", message, name)


def invalid_query(name, message):
    return KpError(400, "The query parameter is invalid", "INVALID_QUERY_PARAM_ERR", message, name)


def unauthorized():
    return KpError(401, "The user does not have access to the specified resource")


def not_found():
    return KpError(404, "Key could not be retrieved", "KEY_NOT_FOUND_ERR", "key does not exist")


def gone(action):
    return KpError(410, "The key has been deleted and is no longer available."
                   "Please provide a valid key when performing an '%s' action" % action)


def invalid_state(action):
    return KpError(409, "Action could not be performed on key", "KEY_ACTION_INVALID_STATE_ERR",
                   "Key is not in a valid state to perform the '%s' action" % action)


def too_early(what):
    return KpError(409, "Key could not be %s" % what, "REQ_TOO_EARLY_ERR",
                   "The key was updated recently: Please wait and try again")


def root_required(action):
    return KpError(400, "Action could not be performed on key", "KEY_ROOT_REQ_ERR",
                   "Requested action can only be completed with a root key: '%s'" % action)


def unprocessable_ciphertext():
    return KpError(422, "Unwrap could not be performed", "UNPROCESSABLE_CIPHERTEXT_ERR",
                   "The provided ciphertext is invalid or corrupted", "ciphertext")


def too_many_requests():
    return KpError(429, "Please wait a few minutes and try again.")
