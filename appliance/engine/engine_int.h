/*
 * Inside the engine: the per-request context every handler receives, the
 * engine's own error codes (mapped to KMIP results in result.c, the one
 * table), attribute rules (attrs.c) and the lifecycle (lifecycle.c).
 */
#ifndef KEEL_ENGINE_INT_H
#define KEEL_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "keel/crypto.h"
#include "keel/hsm.h"
#include "keel/kmip.h"
#include "store.h"

#define ENG_WUR __attribute__((warn_unused_result))

struct keel_engine {
	struct keel_store *store;
	struct hsm *hsm;
	struct kmip_limits lim;
	unsigned max_batch_items;
	unsigned max_locate_items;
	_Atomic(const char *) refusal;	  /* keel_engine_refuse: why nothing is served, or NULL */
	void (*after_prepare)(void *arg); /* keel_engine_config's test hook */
	void *after_prepare_arg;
	_Atomic uint64_t num_prepared, num_prepared_used; /* keel_engine_prep_stats */
};

/* Engine errors: each names a KMIP outcome; result.c maps them per version. */
enum eng_err {
	ENG_OK = 0,
	ENG_E_ITEM_NOT_FOUND = -100, /* unknown UID, or another owner's object */
	ENG_E_INVALID_FIELD = -101,
	ENG_E_MISSING_DATA = -102,
	ENG_E_WRONG_STATE = -103,    /* not permitted in the object's state (KMIP 1.4 §3.22) */
	ENG_E_READ_ONLY = -104,	     /* attribute a client may not set or change */
	ENG_E_ATTR_NOT_FOUND = -105, /* the object has no such attribute instance */
	ENG_E_SINGLE_VALUED = -106,  /* adding a second instance of a single-valued one */
	ENG_E_FEATURE = -107,	     /* a valid request we do not serve */
	ENG_E_KEY_FORMAT = -108,     /* Key Format Type other than the object's */
	ENG_E_KEY_COMPRESSION = -109,
	ENG_E_OBJECT_TYPE = -110, /* operation not for this object type */
	ENG_E_CRYPTO = -111,	  /* the HSM failed */
	ENG_E_INTERNAL = -112,	  /* store or memory */
	ENG_E_OP_NOT_SUPPORTED = -113,
	ENG_E_DESTROYED = -114, /* key material gone */
	ENG_E_INVALID_MESSAGE = -115,
	ENG_E_TOO_LARGE = -116,		 /* response over the limit */
	ENG_E_USAGE_MASK = -117,	 /* usage mask forbids the operation (KMIP 1.4 §3.19) */
	ENG_E_BAD_PARAMS = -118,	 /* Cryptographic Parameters that do not fit */
	ENG_E_UNSUPPORTED_PARAMS = -119, /* Cryptographic Parameters we do not serve */
	ENG_E_MULTI_VALUED = -120,	 /* Set Attribute on several instances (2.0 §6.1.52) */
	ENG_E_PERMISSION = -121,	 /* a grantee's grant does not cover the operation */
};

/* What one batch item left for the audit trail. */
struct eng_audit_item {
	uint32_t operation;
	char uid[KEEL_STORE_UID_MAX + 1];
	uint32_t status, reason;
};

/* One request being answered. Everything allocated for it lives in |arena|. */
struct eng_req {
	struct keel_engine *e;
	const struct keel_client_identity *who;
	struct keel_store_txn *txn;
	struct kmip_arena *arena;
	uint16_t version; /* KMIP_V* bit of the request */
	bool v2;	  /* KMIP 2.x: attributes as tagged items */
	int64_t now;
	char placeholder[KEEL_STORE_UID_MAX + 1]; /* ID Placeholder (KMIP 1.4 §6.19.1) */
	char uid[KEEL_STORE_UID_MAX + 1];	  /* object the current item touched */
	const char *msg;			  /* Result Message of the current item's failure */
	uint32_t grant_needed; /* lowest grant letting a non-owner run the item; 0: owner only */
	bool admin;	       /* an administrator's action (manage.c): every object, any owner */
	struct hsm_secret **secrets; /* plaintext to wipe after encoding (arena array) */
	size_t num_secrets;
	size_t cap_secrets;
	struct eng_attr_batch *batch; /* non-NULL: attr_save gathers new instances here */
	struct eng_prep *prep;	      /* what the current item prepared before the turn, or NULL */
};

/* What a new object is made of, whichever operation makes it. */
struct eng_new_object {
	uint32_t object_type;
	const uint8_t *material;
	size_t material_len;
	struct eng_attr *attrs;
	size_t num_attrs;
	int64_t activation_date;
	bool generated; /* made by the server (Create, Create Key Pair, Re-key), not registered */
};

/*
 * Token work one batch item did before the request took the writers' turn
 * (eng_op.prepare), so that the turn, which every request waits for, is not
 * held for it (issue 7). The op in the turn uses it only where it still
 * holds, and otherwise does the work itself as it always did: the results
 * and audit rows are those of a request that prepared nothing.
 * Create: a UID, the key material, and that material sealed for that UID;
 * Register: its material sealed under a new UID. Get prepares nothing: its
 * unwrap before the turn cost a second read of the object, more CPU than
 * the shorter turn gained once the turn is passed without a hand-off per
 * request (docs/benchmarks.md, "HSM work out of the writers' turn").
 */
struct eng_prep {
	char uid[KEEL_STORE_UID_MAX + 1]; /* "": nothing prepared */
	struct hsm_secret *material;	  /* plaintext; the request's (eng_track_secret) */
	uint8_t *blob;			  /* |material| wrapped for |uid| (arena) */
	size_t blob_len;
	uint32_t crk_version; /* of |blob| */
	/* Create: its attributes, checked before the turn (no store read: a Create
	 * naming a Template prepares nothing), so the turn does not check them again */
	struct eng_new_object request;
};

/* A new object's attributes, written in one store call (eng_store_new). */
struct eng_attr_batch {
	struct keel_store_attr *attrs; /* values on the heap; names and texts the request's */
	size_t num;
	size_t cap;
};

/*
 * Hands |s| to the request, which frees (wipes) it once the response is
 * written. On failure |s| is freed at once and ENG_E_INTERNAL returned.
 */
int eng_track_secret(struct eng_req *r, struct hsm_secret *s);
/* |r| as an administrator's (or the mirror's) request in KMIP 1.4: any owner's
 * objects, |who| named by the caller, everything allocated in |arena| (initialised here). */
void eng_req_init_admin(struct eng_req *r, struct keel_engine *e, struct keel_client_identity *who,
			struct kmip_arena *arena);
/* Frees (wipes) every secret the request was handed. */
void eng_wipe_secrets(struct eng_req *r);
/* A request prepared its token work and is about to begin its transaction (the test hook). */
void eng_prepared(struct keel_engine *e);

/* ---- result.c ----------------------------------------------------------- */

struct eng_result {
	uint32_t status;
	uint32_t reason;
	const char *message;
};

/* The KMIP result for engine error |err| in |version|. */
void eng_result(int err, uint16_t version, struct eng_result *out);
/* Sets r->msg (if not set yet) and returns err, so handlers can `return eng_fail(...)`. */
int eng_fail(struct eng_req *r, int err, const char *msg);
/* A token call failed (HSM_E_*): Cryptographic Failure, and a token that did
 * not answer within hsm.timeout_ms says so to the client. */
int eng_hsm_fail(struct eng_req *r, int hsm_err);
/* Maps a store error, logging it; NOT_FOUND becomes Item Not Found. */
int eng_store_err(struct eng_req *r, int err, const char *what);

/* ---- attrs.c ------------------------------------------------------------ */

enum {
	ATTR_CREATE = 1u << 0, /* a client may give it to Create / Register */
	ATTR_MODIFY = 1u << 1, /* a client may add, modify, delete it */
	ATTR_MULTI = 1u << 2,  /* several instances */
	ATTR_OBJECT = 1u << 3, /* kept in the object row, not in the attribute table */
	ATTR_CUSTOM = 1u << 4, /* x- (client) or y- (server) custom attribute */
};

struct attr_rule {
	const char *name; /* the 1.x Attribute Name (KMIP 1.4 §3) */
	uint32_t tag;
	uint8_t type; /* 0: any (custom) */
	unsigned flags;
};

/* An attribute as a request gave it, whatever the version. */
struct eng_attr {
	const struct attr_rule *rule;
	const char *name; /* NUL-terminated, in the arena */
	bool has_index;
	int32_t index;
	const struct kmip_node *value; /* any tag */
};

/* Attributes being collected for a response, in the version's form. */
struct eng_attr_out {
	struct kmip_attribute *v1;
	const struct kmip_node **v2;
	size_t num, cap;
};

const struct attr_rule *attr_rule_by_name(const char *name, size_t len);
const struct attr_rule *attr_rule_by_tag(uint32_t tag);
char *eng_strdup(struct eng_req *r, const char *s, size_t len);
struct kmip_node *eng_node(struct eng_req *r, uint32_t tag, uint8_t type);

/* Normalises a 1.x Attribute or a 2.x attribute item; checks name and type. */
int attr_from_v1(struct eng_req *r, const struct kmip_attribute *a, struct eng_attr *out) ENG_WUR;
int attr_from_v2(struct eng_req *r, const struct kmip_node *n, struct eng_attr *out) ENG_WUR;
/* The attributes of a Template-Attribute (1.x) or Attributes (2.x), normalised. */
int attr_collect(struct eng_req *r, const struct kmip_template_attribute *ta,
		 const struct kmip_attributes *as, struct eng_attr **out, size_t *out_num) ENG_WUR;

/* ---- template.c: 1.x Templates (KMIP 1.4 §2.2.6) ------------------------ */

/*
 * A Template being registered: checks its attributes, appends its Names to
 * *io_attrs and gives its encoded attribute list, the material to store.
 */
int eng_template_take(struct eng_req *r, const struct kmip_template *t, const uint8_t **material,
		      size_t *material_len, struct eng_attr **io_attrs, size_t *io_num) ENG_WUR;
/* A stored Template's material back as the structure Get returns. */
int eng_template_decode(struct eng_req *r, struct hsm_secret *material,
			struct kmip_template **out) ENG_WUR;
/* |explicit| followed by the attributes of the Templates |names| designate. */
int eng_template_expand(struct eng_req *r, const struct kmip_name *names, size_t num_names,
			struct eng_attr *explicit, size_t num_explicit, struct eng_attr **out,
			size_t *out_num) ENG_WUR;

/* Writes |a| as instance |index| of |uid| (insert, or update when |update|); while
 * r->batch is set, a new instance is only added to the batch. */
int attr_save(struct eng_req *r, const char *uid, const struct eng_attr *a, int32_t index,
	      bool update) ENG_WUR;
/* Ends r->batch: if |err| is 0, adds what it gathered to |uid| (the result); frees it either way.
 */
int attr_batch_end(struct eng_req *r, const char *uid, int err) ENG_WUR;
/* Appends one instance to |out|; |value| carries any tag. */
int attr_emit(struct eng_req *r, struct eng_attr_out *out, const char *name, int32_t index,
	      const struct kmip_node *value) ENG_WUR;
/* Emits the object-row attributes named |name| (all of them when NULL). */
int attr_emit_object(struct eng_req *r, struct eng_attr_out *out, const struct keel_store_object *o,
		     const char *name) ENG_WUR;
/* Emits the stored attributes named |name| (all when NULL); internal ones are skipped. */
int attr_emit_stored(struct eng_req *r, struct eng_attr_out *out, const char *uid,
		     const char *name) ENG_WUR;
/* The value of stored instance |sa| as a node tagged Attribute Value. */
int attr_load_value(struct eng_req *r, const struct keel_store_attr *sa,
		    const struct kmip_node **out) ENG_WUR;
/* TTLV bytes of |value| retagged Attribute Value (malloc'd), and its searchable text. */
int attr_encode_value(struct eng_req *r, const struct kmip_node *value, uint8_t **out,
		      size_t *out_len, const char **out_text) ENG_WUR;

/*
 * The lease a client gets (Obtain Lease, KMIP 1.4 §4.17) and every object's
 * Lease Time attribute (§3.20): an hour, our policy until a setting asks for
 * another.
 */
#define ENG_LEASE_SECONDS 3600u

/* ---- lifecycle.c -------------------------------------------------------- */

/*
 * Loads |uid| (or the ID Placeholder when uid is NULL) if the requester may
 * run the current item on it: its owner, a grantee whose grant reaches
 * r->grant_needed, or an administrator. Anyone else finds no such object
 * (Item Not Found, so existence leaks to nobody); a grantee whose grant is too
 * low gets Permission Denied.
 */
int eng_load(struct eng_req *r, const char *uid, size_t uid_len,
	     struct keel_store_object *out) ENG_WUR;
/* eng_load's check for an object the item names in another field (a wrapping key):
 * returns an engine error without setting the item's message or UID. */
int eng_load_object(struct eng_req *r, const char *uid, struct keel_store_object *out) ENG_WUR;
int eng_activate(struct eng_req *r, struct keel_store_object *o) ENG_WUR;
int eng_revoke(struct eng_req *r, struct keel_store_object *o, uint32_t reason,
	       int64_t occurrence) ENG_WUR;
int eng_destroy(struct eng_req *r, struct keel_store_object *o) ENG_WUR;
/* Writes the changed row and stamps Last Change Date. */
int eng_save(struct eng_req *r, struct keel_store_object *o) ENG_WUR;

/* ---- ops_*.c: handlers --------------------------------------------------- */

typedef int (*eng_op_fn)(struct eng_req *r, const void *req, void **out_resp);
/*
 * Before the request's transaction: token work the op will need, into |out|
 * (zeroed). It changes nothing and answers nothing: whatever it cannot do
 * it leaves undone, and the op does it, or fails, in the turn as before.
 */
typedef void (*eng_prep_fn)(struct eng_req *r, const void *req, struct eng_prep *out);

struct eng_op {
	uint32_t operation;
	eng_op_fn fn;
	uint32_t grant;	     /* lowest grant letting a non-owner run it (manage.h); 0: owner only */
	eng_prep_fn prepare; /* optional */
};

extern const struct eng_op eng_ops[];
extern const size_t eng_num_ops;

int op_discover_versions(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_query(struct eng_req *r, const void *req, void **out) ENG_WUR;
/* Adds the answer to capability query |function| (1.1+ functions) to |p| (ops_query.c). */
int eng_query_capability(struct eng_req *r, uint32_t function,
			 struct kmip_query_response *p) ENG_WUR;
int op_create(struct eng_req *r, const void *req, void **out) ENG_WUR;
void prepare_create(struct eng_req *r, const void *req, struct eng_prep *out);
int op_get(struct eng_req *r, const void *req, void **out) ENG_WUR;
/* Get's answer for the loaded |o| into |p|. |client|: a client's Get, which
 * Sensitive and Extractable restrict and which clears Fresh; otherwise the
 * mirror's export (keel_engine_export), which neither checks nor changes. */
int eng_get_response(struct eng_req *r, const struct keel_store_object *o,
		     const struct kmip_get_request *q, bool client,
		     struct kmip_get_response *p) ENG_WUR;
int op_get_attributes(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_get_attribute_list(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_add_attribute(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_modify_attribute(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_delete_attribute(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_activate(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_revoke(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_destroy(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_locate(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_check(struct eng_req *r, const void *req, void **out) ENG_WUR;

/* ---- usage.c: keys for the cryptographic operations ---------------------- */

/* What an operation does with a key: the usage mask bit, and whether it protects. */
struct eng_key_use {
	uint32_t mask;
	bool protect;	      /* Encrypt, Sign, MAC: Active keys only (KMIP 1.4 §3.22) */
	uint32_t object_type; /* the Object Type the operation takes */
	uint32_t alt_type;    /* and another it also takes, or 0 */
};

/* A key opened for one operation; its plaintext lives until eng_key_close. */
struct eng_key {
	struct keel_store_object o;
	struct hsm_secret *secret;
	uint32_t algorithm; /* Cryptographic Algorithm, 0 if none */
};

/* Loads |uid| for |use|: type, state and usage mask checked, material unwrapped. */
int eng_key_open(struct eng_req *r, const char *uid, size_t uid_len, const struct eng_key_use *use,
		 struct eng_key *out) ENG_WUR;
/* Wipes the plaintext and frees the row; safe on a key eng_key_open refused. */
void eng_key_close(struct eng_key *k);
/* The Cryptographic Parameters an operation uses (KMIP 1.4 §4.29-§4.34): |given| (the
 * request's), else the key's own attribute (§3.6, first instance), else NULL. */
int eng_key_params(struct eng_req *r, const struct eng_key *k,
		   const struct kmip_cryptographic_parameters *given,
		   const struct kmip_cryptographic_parameters **out) ENG_WUR;
/* Fails with Feature Not Supported unless the request is single-shot (no streaming). */
int eng_single_shot(struct eng_req *r, size_t correlation_len, bool has_init, bool init,
		    bool has_final, bool final) ENG_WUR;

/* ---- ops_crypto.c, ops_attr.c (Set Attribute): handlers ---------------------- */

int op_encrypt(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_decrypt(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_mac(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_mac_verify(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_rng_retrieve(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_hash(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_set_attribute(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_sign(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_signature_verify(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_adjust_attribute(struct eng_req *r, const void *req, void **out) ENG_WUR;
/* The attribute name a 2.x Attribute Reference designates (2.0 §7.4); "" if none. */
const char *eng_reference_name(struct eng_req *r, const struct kmip_node *ref);
/* The keel_crypto hash of a Hashing Algorithm (|hmac| false) or HMAC algorithm (|hmac| true). */
int eng_find_hash(uint32_t value, bool hmac, enum kc_hash *out) ENG_WUR;
/* keel_crypto's errors as KMIP results (ops_crypto.c). */
int eng_crypto_err(struct eng_req *r, int err) ENG_WUR;

/* Allocates a zeroed response payload of |size| bytes in the arena. */
void *eng_alloc(struct eng_req *r, size_t size);

/* ---- object operations (ops_object.c, ops_register.c, ops_get.c) --------- */

/* Objects with a Key Block (KMIP 1.4 §2.2): keys, Secret Data, Split Keys, PGP Keys. */
bool eng_has_key_block(uint32_t object_type);

/* ---- protect.c: Sensitive, Extractable and their histories (1.4 §3.47-§3.50) ---- */

/* A new object's Sensitive, Extractable, Always Sensitive, Never Extractable and, if the
 * server made it, Random Number Generator. */
int eng_protect_init(struct eng_req *r, const char *uid, const struct eng_new_object *no) ENG_WUR;
/* After a client changed |a| on |uid|: ends Always Sensitive or Never Extractable if due. */
int eng_protect_changed(struct eng_req *r, const char *uid, const struct eng_attr *a) ENG_WUR;
/* Refuses a Get of a non-Extractable object, or of a Sensitive one not |wrapped|. */
int eng_protect_check_get(struct eng_req *r, const char *uid, bool wrapped) ENG_WUR;

/* Rejects attributes a client may not set at creation (KMIP 1.4 §3); notes Activation Date. */
int eng_check_create_attrs(struct eng_req *r, struct eng_new_object *no) ENG_WUR;
/* Wraps the material under the CRK (UID as AAD), writes the object and its attributes. */
int eng_store_new(struct eng_req *r, const struct eng_new_object *no, char *out_uid) ENG_WUR;
/* Wraps |len| bytes of |material| for o->uid under the active CRK into o->blob (malloc'd)
 * and o->crk_version; an HSM_E_* error, logged, on failure. */
int eng_seal(struct hsm *h, const uint8_t *material, size_t len,
	     struct keel_store_object *o) ENG_WUR;
/*
 * Whether a blob sealed under |crk_version| before the writers' turn may be
 * stored in it: the version is still the active one. A rotation that began
 * meanwhile could otherwise retire that version under the new object (its
 * sweep sees only what committed before; crk/rotation.c).
 */
bool eng_seal_current(struct hsm *h, uint32_t crk_version);
/* Before the turn: |material| (handed to the request, which wipes it) sealed under a new
 * UID into |p|, for eng_store_new to use if the item stores that very material. */
void eng_prepare_seal(struct eng_req *r, struct hsm_secret *material, struct eng_prep *p);
/* A stored Integer or Enumeration attribute's first instance; 0 if absent. */
int32_t eng_stored_int(struct eng_req *r, const char *uid, const char *name);
/* A stored attribute's first instance (in the request's arena); NULL if absent. */
const struct kmip_node *eng_stored_value(struct eng_req *r, const char *uid, const char *name);
/* Keeps a copy of |len| bytes of key material (for NULL |data|, zeroed room to fill)
 * until the response is written, then wipes it. */
int eng_keep_secret(struct eng_req *r, const uint8_t *data, size_t len,
		    const uint8_t **out) ENG_WUR;

/* The KMIP tag of each Transparent RSA component, in KC_RSA_* order (keel/crypto.h). */
extern const uint32_t eng_rsa_tags[8];
/* The rule of the engine's bookkeeping attributes ("_" names): stored, never shown. */
extern const struct attr_rule eng_internal_rule;
/* A Link value {Link Type, Linked Object Identifier |uid|} (KMIP 1.4 §3.35); NULL on no memory. */
struct kmip_node *eng_link_value(struct eng_req *r, uint32_t type, const char *uid);
/* Adds a Link of |type| to |other| as |uid|'s next Link instance. */
int eng_add_link(struct eng_req *r, const char *uid, uint32_t type, const char *other) ENG_WUR;

/*
 * Register's reading of the object in |q| (its Object Type and object): the
 * material to store in out->material (pointing into |q| or |converted|, which
 * the caller frees with kc_buf_free) and the attributes the server derives
 * from it in out->attrs, the "_" bookkeeping ones included. A recovery
 * (import.c) restores an exported Get's object through it.
 */
int eng_take_object(struct eng_req *r, const struct kmip_register_request *q,
		    struct kc_buf *converted, struct eng_new_object *out) ENG_WUR;
int op_register(struct eng_req *r, const void *req, void **out) ENG_WUR;
void prepare_register(struct eng_req *r, const void *req, struct eng_prep *out);
int op_create_key_pair(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_rekey(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_archive(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_recover(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_obtain_lease(struct eng_req *r, const void *req, void **out) ENG_WUR;
int op_get_usage_allocation(struct eng_req *r, const void *req, void **out) ENG_WUR;
/* Spends |bytes| (or one object) of |uid|'s Usage Limits, if any (ops_archive.c). */
int eng_usage_spend(struct eng_req *r, const char *uid, size_t bytes) ENG_WUR;
/* Fills in Usage Limits Count (= Total) on Usage Limits a client sets (ops_archive.c). */
int eng_usage_limits_init(struct eng_req *r, struct eng_attr *a) ENG_WUR;
/* Answers with |o|'s Unique Identifier alone (Activate, Destroy, Archive, ...). */
int eng_uid_response(struct eng_req *r, const struct keel_store_object *o, void **out) ENG_WUR;

#endif
