/*
 * Key Protect operations (KEYPROTECT.md §2): request bodies built with
 * jansson (except wrap's, which holds plaintext and is built in locked
 * memory), answers checked field by field.
 */
#include "mirror_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define KEY_COLLECTION "application/vnd.ibm.kms.key+json"
#define LIST_PAGE      200

/* A required field must be there and not empty: Key Protect names every key
 * and version by a UUID, and an empty one would name nothing (fuzz_mirror). */
static int copy_field(char *dst, size_t cap, const char *src, bool required)
{
	if (src == NULL || src[0] == '\0') {
		dst[0] = '\0';
		return required ? MIRROR_E_PROTOCOL : 0;
	}
	if (strlen(src) >= cap) {
		return MIRROR_E_PROTOCOL;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int parse_key(const json_t *res, struct mirror_key *out)
{
	const json_t *state = json_object_get(res, "state");
	const char *version =
	    json_string_value(json_object_get(json_object_get(res, "keyVersion"), "id"));
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = copy_field(out->id, sizeof(out->id), json_string_value(json_object_get(res, "id")),
			    true)) != 0 ||
	    (r = copy_field(out->name, sizeof(out->name),
			    json_string_value(json_object_get(res, "name")), false)) != 0 ||
	    (r = copy_field(out->version_id, sizeof(out->version_id), version, false)) != 0) {
		return r;
	}
	if (!json_is_integer(state) || json_integer_value(state) < 0 ||
	    json_integer_value(state) > 5) {
		return MIRROR_E_PROTOCOL;
	}
	out->state = (int)json_integer_value(state);
	out->extractable = json_is_true(json_object_get(res, "extractable"));
	out->imported = json_is_true(json_object_get(res, "imported"));
	return 0;
}

/* The answer's JSON; MIRROR_E_PROTOCOL when it is not an object. */
static int reply_json(const struct mirror_reply *reply, json_t **out)
{
	*out = reply->body != NULL ? json_loadb(reply->body, reply->len, 0, NULL) : NULL;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		keel_warn("mirror: Key Protect answered with no JSON object");
		return MIRROR_E_PROTOCOL;
	}
	return 0;
}

/* A call whose body is a JSON document (or none) and whose answer is one. */
static int call_json(struct mirror *m, const char *method, const char *path, json_t *body,
		     json_t **out_doc)
{
	struct mirror_reply reply = {0};
	char *text = NULL;
	int r;

	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	r = mirror_kp_call(m, method, path, text, &reply);
	if (r == 0 && out_doc != NULL) {
		r = reply_json(&reply, out_doc);
	}
	mirror_free_wiped(text);
	mirror_reply_cleanup(&reply);
	return r;
}

/* The first resource of a collection answer, as a key. */
static int first_key(json_t *doc, struct mirror_key *out)
{
	const json_t *res = json_array_get(json_object_get(doc, "resources"), 0);

	return json_is_object(res) ? parse_key(res, out) : MIRROR_E_PROTOCOL;
}

static json_t *key_wrapper(json_t *resource)
{
	if (resource == NULL ||
	    json_object_set_new(resource, "type", json_string(KEY_COLLECTION))) {
		json_decref(resource);
		return NULL;
	}
	return json_pack("{s:{s:s,s:i},s:[o]}", "metadata", "collectionType", KEY_COLLECTION,
			 "collectionTotal", 1, "resources", resource);
}

static int create(struct mirror *m, json_t *resource, struct mirror_key *out_key)
{
	json_t *body = key_wrapper(resource), *doc = NULL;
	int r;

	if (body == NULL) {
		return MIRROR_E_NOMEM;
	}
	if ((r = call_json(m, "POST", "/keys", body, &doc)) == 0) {
		r = first_key(doc, out_key);
	}
	json_decref(body);
	json_decref(doc);
	return r;
}

static bool name_ok(const char *name)
{
	return name != NULL && strlen(name) >= 2 && strlen(name) <= 90;
}

int mirror_create_root(struct mirror *m, const char *name, struct mirror_key *out_key)
{
	if (!name_ok(name)) {
		return MIRROR_E_INVAL;
	}
	return create(m, json_pack("{s:s,s:b}", "name", name, "extractable", 0), out_key);
}

int mirror_create_standard(struct mirror *m, const char *name, const uint8_t *payload,
			   size_t payload_len, struct mirror_key *out_key)
{
	char *b64;
	int r;

	if (!name_ok(name) || payload == NULL || payload_len == 0 ||
	    payload_len > MIRROR_STANDARD_MAX) {
		return MIRROR_E_INVAL;
	}
	if ((b64 = mirror_b64_encode(payload, payload_len)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	r = create(m, json_pack("{s:s,s:b,s:s}", "name", name, "extractable", 1, "payload", b64),
		   out_key);
	mirror_free_wiped(b64);
	return r;
}

/* "/keys/<id><suffix>" with the id percent-encoded; malloc'd or NULL. */
static char *key_path(struct mirror *m, const char *id, const char *suffix)
{
	char *esc, *path = NULL;

	if (id == NULL || id[0] == '\0' || strlen(id) >= MIRROR_ID_LEN * 2 ||
	    (esc = curl_easy_escape(m->curl, id, 0)) == NULL) {
		return NULL;
	}
	if (asprintf(&path, "/keys/%s%s", esc, suffix) < 0) {
		path = NULL;
	}
	curl_free(esc);
	return path;
}

/* A call on one key: path from id and suffix; MIRROR_E_INVAL for a bad id. */
static int key_call(struct mirror *m, const char *method, const char *id, const char *suffix,
		    json_t *body, json_t **out_doc)
{
	char *path = key_path(m, id, suffix);
	int r;

	if (path == NULL) {
		return MIRROR_E_INVAL;
	}
	r = call_json(m, method, path, body, out_doc);
	free(path);
	return r;
}

int mirror_get_key(struct mirror *m, const char *id, struct mirror_key *out_key,
		   struct hsm_secret **out_payload)
{
	json_t *doc = NULL;
	const char *payload;
	int r;

	if (out_payload != NULL) {
		*out_payload = NULL;
	}
	if ((r = key_call(m, "GET", id, "", NULL, &doc)) != 0 ||
	    (r = first_key(doc, out_key)) != 0) {
		goto out;
	}
	payload = json_string_value(
	    json_object_get(json_array_get(json_object_get(doc, "resources"), 0), "payload"));
	if (out_payload != NULL && out_key->extractable && payload != NULL) {
		r = mirror_b64_decode_secret(payload, out_payload);
	}
out:
	json_decref(doc);
	return r;
}

int mirror_delete(struct mirror *m, const char *id)
{
	return key_call(m, "DELETE", id, "", NULL, NULL);
}

/* One page of GET /keys: calls fn for each key whose name has the prefix;
 * *out_count is the number of keys on the page, for the caller's paging. */
static int list_page(struct mirror *m, const char *query, const char *prefix, mirror_list_fn fn,
		     void *arg, size_t *out_count)
{
	json_t *doc = NULL;
	const json_t *resources;
	struct mirror_key key;
	size_t i;
	int r;

	if ((r = call_json(m, "GET", query, NULL, &doc)) != 0) {
		return r;
	}
	resources = json_object_get(doc, "resources");
	*out_count = json_array_size(resources);
	if (resources != NULL && !json_is_array(resources)) {
		r = MIRROR_E_PROTOCOL;
	}
	for (i = 0; r == 0 && i < *out_count; i++) {
		if ((r = parse_key(json_array_get(resources, i), &key)) == 0 &&
		    strncmp(key.name, prefix, strlen(prefix)) == 0) {
			r = fn(arg, &key);
		}
	}
	json_decref(doc);
	return r;
}

int mirror_list(struct mirror *m, const char *prefix, bool with_deleted, mirror_list_fn fn,
		void *arg)
{
	char query[128];
	size_t offset = 0, count = LIST_PAGE;
	int r = 0;

	if (prefix == NULL || fn == NULL) {
		return MIRROR_E_INVAL;
	}
	while (r == 0 && count == LIST_PAGE) {
		snprintf(query, sizeof(query), "/keys?limit=%d&offset=%zu&state=%s", LIST_PAGE,
			 offset, with_deleted ? "1,2,3,5" : "1,2,3");
		r = list_page(m, query, prefix, fn, arg, &count);
		offset += count;
	}
	return r;
}

struct named {
	const char *name;
	mirror_list_fn fn;
	void *arg;
};

/* Passes on only keys named exactly so: a service that ignored the search,
 * or matched by substring, would otherwise hand back others. */
static int only_named(void *arg, const struct mirror_key *key)
{
	struct named *n = arg;

	return strcmp(key->name, n->name) == 0 ? n->fn(n->arg, key) : 0;
}

int mirror_find_all(struct mirror *m, const char *name, mirror_list_fn fn, void *arg)
{
	struct named n = {name, fn, arg};
	char *esc, *query = NULL;
	size_t count;
	int r;

	if (!name_ok(name) || fn == NULL || (esc = curl_easy_escape(m->curl, name, 0)) == NULL) {
		return MIRROR_E_INVAL;
	}
	if (asprintf(&query, "/keys?limit=%d&state=1,2,3&search=exact:name:%s", LIST_PAGE, esc) <
	    0) {
		query = NULL;
	}
	curl_free(esc);
	if (query == NULL) {
		return MIRROR_E_NOMEM;
	}
	r = list_page(m, query, name, only_named, &n, &count);
	free(query);
	return r;
}

static int take_first(void *arg, const struct mirror_key *key)
{
	*(struct mirror_key *)arg = *key;
	return 1; /* stop */
}

int mirror_find_by_name(struct mirror *m, const char *name, struct mirror_key *out_key)
{
	int r;

	memset(out_key, 0, sizeof(*out_key));
	r = mirror_find_all(m, name, take_first, out_key);
	return r == 1 ? 0 : r < 0 ? r : MIRROR_E_NOT_FOUND;
}

/* JSON text of ["aad"] (or "" without AAD), for bodies built by hand. */
static char *aad_json(const char *aad)
{
	json_t *arr;
	char *text;

	if (aad == NULL) {
		return strdup("");
	}
	if ((arr = json_pack("[s]", aad)) == NULL) {
		return NULL;
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/* {"plaintext":"<b64>","aad":[...]} in locked memory: it holds the plaintext. */
static int wrap_body(const uint8_t *pt, size_t pt_len, const char *aad, struct hsm_secret **out)
{
	char *b64 = mirror_b64_encode(pt, pt_len), *aad_text = aad_json(aad);
	int r = MIRROR_E_NOMEM;

	*out = NULL;
	if (b64 != NULL && aad_text != NULL &&
	    hsm_secret_new(strlen(b64) + strlen(aad_text) + 32, out) == 0) {
		snprintf((char *)hsm_secret_data(*out), hsm_secret_len(*out),
			 "{\"plaintext\":\"%s\"%s%s}", b64, aad != NULL ? ",\"aad\":" : "",
			 aad_text);
		r = 0;
	}
	mirror_free_wiped(b64);
	free(aad_text);
	return r;
}

static int string_out(const json_t *doc, const char *field, char **out)
{
	const char *v = json_string_value(json_object_get(doc, field));

	if (v == NULL || v[0] == '\0') {
		return MIRROR_E_PROTOCOL;
	}
	return (*out = strdup(v)) != NULL ? 0 : MIRROR_E_NOMEM;
}

int mirror_wrap(struct mirror *m, const char *id, const uint8_t *pt, size_t pt_len, const char *aad,
		char **out_ciphertext, char out_version[MIRROR_ID_LEN])
{
	struct mirror_reply reply = {0};
	struct hsm_secret *body = NULL;
	char *path = key_path(m, id, "/actions/wrap");
	json_t *doc = NULL;
	int r;

	*out_ciphertext = NULL;
	if (path == NULL || pt == NULL || pt_len == 0 || pt_len > MIRROR_WRAP_MAX) {
		r = MIRROR_E_INVAL;
		goto out;
	}
	if ((r = wrap_body(pt, pt_len, aad, &body)) != 0 ||
	    (r = mirror_kp_call(m, "POST", path, (const char *)hsm_secret_data(body), &reply)) !=
		0 ||
	    (r = reply_json(&reply, &doc)) != 0 ||
	    (r = copy_field(
		 out_version, MIRROR_ID_LEN,
		 json_string_value(json_object_get(json_object_get(doc, "keyVersion"), "id")),
		 true)) != 0) {
		goto out;
	}
	r = string_out(doc, "ciphertext", out_ciphertext);
out:
	json_decref(doc);
	mirror_reply_cleanup(&reply);
	hsm_secret_free(body);
	free(path);
	return r;
}

static json_t *ciphertext_body(const char *ciphertext, const char *aad)
{
	json_t *body = json_pack("{s:s}", "ciphertext", ciphertext);

	if (body != NULL && aad != NULL &&
	    json_object_set_new(body, "aad", json_pack("[s]", aad)) != 0) {
		json_decref(body);
		body = NULL;
	}
	return body;
}

/* unwrap or rewrap: the answer document, or an error. */
static int ciphertext_action(struct mirror *m, const char *id, const char *action,
			     const char *ciphertext, const char *aad, json_t **out_doc)
{
	json_t *body;
	int r;

	*out_doc = NULL;
	if (ciphertext == NULL || ciphertext[0] == '\0') {
		return MIRROR_E_INVAL;
	}
	if ((body = ciphertext_body(ciphertext, aad)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	r = key_call(m, "POST", id, action, body, out_doc);
	json_decref(body);
	return r;
}

int mirror_unwrap(struct mirror *m, const char *id, const char *ciphertext, const char *aad,
		  struct hsm_secret **out_pt, char **out_rewrapped)
{
	json_t *doc = NULL;
	const char *pt;
	int r;

	*out_pt = NULL;
	if (out_rewrapped != NULL) {
		*out_rewrapped = NULL;
	}
	if ((r = ciphertext_action(m, id, "/actions/unwrap", ciphertext, aad, &doc)) != 0) {
		goto out;
	}
	if ((pt = json_string_value(json_object_get(doc, "plaintext"))) == NULL) {
		r = MIRROR_E_PROTOCOL;
		goto out;
	}
	if ((r = mirror_b64_decode_secret(pt, out_pt)) == 0 && out_rewrapped != NULL &&
	    json_object_get(doc, "ciphertext") != NULL) {
		r = string_out(doc, "ciphertext", out_rewrapped);
	}
	if (r != 0) {
		hsm_secret_free(*out_pt);
		*out_pt = NULL;
	}
out:
	json_decref(doc); /* jansson wipes on free (mirror_json_wipe_on_free) */
	return r;
}

int mirror_rewrap(struct mirror *m, const char *id, const char *ciphertext, const char *aad,
		  char **out_ciphertext)
{
	json_t *doc = NULL;
	int r;

	*out_ciphertext = NULL;
	if ((r = ciphertext_action(m, id, "/actions/rewrap", ciphertext, aad, &doc)) == 0) {
		r = string_out(doc, "ciphertext", out_ciphertext);
	}
	json_decref(doc);
	return r;
}

void mirror_import_token_cleanup(struct mirror_import_token *t)
{
	free(t->public_key_pem);
	explicit_bzero(t, sizeof(*t));
}

/* payload (b64 of a PEM) and nonce (b64 of 12 bytes) of GET /import_token. */
static int parse_import_token(const json_t *doc, struct mirror_import_token *out)
{
	const char *payload = json_string_value(json_object_get(doc, "payload"));
	const char *nonce = json_string_value(json_object_get(doc, "nonce"));
	long pem_len = payload != NULL ? mirror_b64_decoded_len(payload) : -1;
	int r;

	if (nonce == NULL || pem_len <= 0 || pem_len > 16384) {
		return MIRROR_E_PROTOCOL;
	}
	if ((r = mirror_b64_decode(nonce, out->nonce, sizeof(out->nonce))) != 0) {
		return r;
	}
	if ((out->public_key_pem = calloc(1, (size_t)pem_len + 1)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	if ((r = mirror_b64_decode(payload, (uint8_t *)out->public_key_pem, (size_t)pem_len)) !=
		0 ||
	    strlen(out->public_key_pem) != (size_t)pem_len ||
	    strncmp(out->public_key_pem, "-----BEGIN PUBLIC KEY-----", 26) != 0) {
		mirror_import_token_cleanup(out);
		return r != 0 ? r : MIRROR_E_PROTOCOL;
	}
	return 0;
}

int mirror_import_token(struct mirror *m, uint32_t expiration_s,
			struct mirror_import_token *out_token)
{
	json_t *body, *doc = NULL;
	int r;

	memset(out_token, 0, sizeof(*out_token));
	if (expiration_s < 300 || expiration_s > 86400) {
		return MIRROR_E_INVAL;
	}
	if ((body = json_pack("{s:I,s:i}", "expiration", (json_int_t)expiration_s,
			      "maxAllowedRetrievals", 1)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	if ((r = call_json(m, "POST", "/import_token", body, NULL)) == 0 &&
	    (r = call_json(m, "GET", "/import_token", NULL, &doc)) == 0) {
		r = parse_import_token(doc, out_token);
	}
	json_decref(body);
	json_decref(doc);
	return r;
}

/* The secure-import fields, added to obj. */
static int add_secure_fields(json_t *obj, const struct mirror_secure_payload *sp)
{
	char *wrapped = NULL, *nonce = NULL, *iv = NULL;
	int r = MIRROR_E_NOMEM;

	if (sp->wrapped == NULL || sp->wrapped_len == 0 || sp->wrapped_len > 1024 ||
	    sp->encrypted_nonce == NULL || sp->encrypted_nonce_len == 0 ||
	    sp->encrypted_nonce_len > 64 || sp->iv == NULL || sp->iv_len != 12) {
		return MIRROR_E_INVAL;
	}
	if ((wrapped = mirror_b64_encode(sp->wrapped, sp->wrapped_len)) != NULL &&
	    (nonce = mirror_b64_encode(sp->encrypted_nonce, sp->encrypted_nonce_len)) != NULL &&
	    (iv = mirror_b64_encode(sp->iv, sp->iv_len)) != NULL &&
	    json_object_set_new(obj, "payload", json_string(wrapped)) == 0 &&
	    json_object_set_new(obj, "encryptedNonce", json_string(nonce)) == 0 &&
	    json_object_set_new(obj, "iv", json_string(iv)) == 0 &&
	    json_object_set_new(obj, "encryptionAlgorithm", json_string("RSAES_OAEP_SHA_256")) ==
		0) {
		r = 0;
	}
	free(wrapped);
	free(nonce);
	free(iv);
	return r;
}

int mirror_import_root(struct mirror *m, const char *name, const struct mirror_secure_payload *sp,
		       struct mirror_key *out_key)
{
	json_t *res;
	int r;

	if (!name_ok(name) || sp == NULL) {
		return MIRROR_E_INVAL;
	}
	if ((res = json_pack("{s:s,s:b}", "name", name, "extractable", 0)) == NULL) {
		return MIRROR_E_NOMEM;
	}
	if ((r = add_secure_fields(res, sp)) != 0) {
		json_decref(res);
		return r;
	}
	return create(m, res, out_key);
}

int mirror_rotate(struct mirror *m, const char *id, const struct mirror_secure_payload *sp)
{
	json_t *body = NULL;
	int r;

	if (sp != NULL) {
		if ((body = json_object()) == NULL) {
			return MIRROR_E_NOMEM;
		}
		if ((r = add_secure_fields(body, sp)) != 0) {
			json_decref(body);
			return r;
		}
	}
	r = key_call(m, "POST", id, "/actions/rotate", body, NULL);
	json_decref(body);
	return r;
}
