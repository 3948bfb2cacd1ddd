/*
 * The vCenter 7.0.3 session ($KEEL_VECTORS/vcenter) replayed through the
 * engine in VCENTER.md §2 order, the UIDs "1"/"2" replaced by the one Create
 * returned, asserting the §5 checklist items the engine owns. Skipped, loudly,
 * when the vectors are absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"
#include "msg_test_util.h"

static char *session;

/* The hex block after "name:" in the session file, decoded. */
static uint8_t *block(const char *name, size_t *out_len)
{
	char key[96], *p, *end, *hex;
	uint8_t *b;

	snprintf(key, sizeof(key), "\n%s:\n", name);
	p = strstr(session, key);
	assert_non_null(p);
	p += strlen(key);
	end = strstr(p, "\n\n");
	hex = strndup(p, end != NULL ? (size_t)(end - p) : strlen(p));
	b = msg_from_hex(hex, out_len);
	free(hex);
	assert_non_null(b);
	return b;
}

/* Sends block |name| with every item's Unique Identifier set to |uid| (if given). */
static void replay(struct engine_fx *f, const char *name, const char *uid)
{
	size_t len = 0, n;
	uint8_t *req = block(name, &len);
	struct kmip_arena a;
	struct kmip_request_message *m;
	struct kmip_writer w;
	const uint8_t *p;

	kmip_arena_init(&a, NULL, 0);
	assert_int_equal(kmip_request_decode(req, len, &kmip_default_limits, &a, &m, NULL), 0);
	for (size_t i = 0; uid != NULL && i < m->num_batch_items; i++) {
		/* Every payload replayed here starts with the Unique Identifier. */
		struct kmip_unique_identifier_request *q = m->batch_items[i].request_payload;

		q->unique_identifier = uid;
		q->unique_identifier_len = strlen(uid);
	}
	kmip_writer_init(&w, 1u << 16);
	assert_int_equal(kmip_request_encode(&w, m), 0);
	assert_int_equal(kmip_writer_finish(&w, &p, &n), 0);
	engine_fx_send(f, &f->alice, p, n);
	kmip_writer_cleanup(&w);
	kmip_arena_cleanup(&a);
	free(req);
	/* §5.4: answered in 1.1 with a Time Stamp. */
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_major, 1);
	assert_int_equal(f->msg->response_header->protocol_version->protocol_version_minor, 1);
	assert_true(f->msg->response_header->time_stamp > 0);
	for (size_t i = 0; i < f->msg->num_batch_items; i++) {
		assert_int_equal(f->msg->batch_items[i].result_status, KMIP_RESULT_STATUS_SUCCESS);
	}
}

static void expect_qlkc(const struct kmip_response_batch_item *bi, uint8_t n)
{
	const uint8_t want[8] = {'Q', 'L', 'K', 'C', n, 0, 0, 0};

	assert_int_equal(bi->unique_batch_item_id_len, 8);
	assert_memory_equal(bi->unique_batch_item_id, want, 8);
}

static void test_session(void **state)
{
	struct engine_fx *f = engine_fx_new();
	char uid[129];
	(void)state;

	replay(f, "discover-versions", NULL);
	const struct kmip_discover_versions_response *dv = f->msg->batch_items[0].response_payload;
	bool has11 = false;
	for (size_t i = 0; i < dv->num_protocol_versions; i++) {
		has11 |= dv->protocol_versions[i].protocol_version_major == 1 &&
			 dv->protocol_versions[i].protocol_version_minor == 1;
	}
	assert_true(has11); /* §5.5 */
	replay(f, "discover-versions-with-batch-id", NULL);
	expect_qlkc(&f->msg->batch_items[0], 1);
	replay(f, "query", NULL);
	const struct kmip_query_response *qr = f->msg->batch_items[0].response_payload;
	assert_true(qr->vendor_identification_len > 0); /* §5.9 */
	replay(f, "create", NULL);
	const struct kmip_create_response *cr = f->msg->batch_items[0].response_payload;
	assert_int_equal(cr->object_type, KMIP_OBJECT_TYPE_SYMMETRIC_KEY); /* §5.10 */
	memcpy(uid, cr->unique_identifier, cr->unique_identifier_len);
	uid[cr->unique_identifier_len] = '\0';
	replay(f, "get-attributes", uid);
	const struct kmip_get_attributes_response *ga = f->msg->batch_items[0].response_payload;
	assert_int_equal(ga->num_attribute, 0); /* §5.11: Success with only the UID */
	assert_memory_equal(ga->unique_identifier, uid, strlen(uid));
	replay(f, "add-attribute", uid);
	assert_int_equal(f->msg->num_batch_items, 3); /* §5.7, §5.8 */
	for (uint8_t i = 0; i < 3; i++) {
		expect_qlkc(&f->msg->batch_items[i], (uint8_t)(i + 1));
	}
	replay(f, "get", uid);
	const struct kmip_get_response *g = f->msg->batch_items[0].response_payload;
	assert_int_equal(g->symmetric_key->key_block->key_format_type, KMIP_KEY_FORMAT_TYPE_RAW);
	assert_int_equal(g->symmetric_key->key_block->key_value->key_material_len, 32); /* §5.15 */
	assert_int_equal(g->symmetric_key->key_block->cryptographic_algorithm,
			 KMIP_CRYPTOGRAPHIC_ALGORITHM_AES);
	assert_int_equal(g->symmetric_key->key_block->cryptographic_length, 256);
	replay(f, "get-attributes-state", uid);
	ga = f->msg->batch_items[0].response_payload;
	assert_int_equal(ga->num_attribute, 1);
	assert_int_equal(ga->attribute[0].attribute_value->v.u32,
			 KMIP_STATE_PRE_ACTIVE); /* §5.13 */
	replay(f, "activate", uid);		 /* §5.14 */
	replay(f, "get-attributes-state", uid);
	ga = f->msg->batch_items[0].response_payload;
	assert_int_equal(ga->attribute[0].attribute_value->v.u32, KMIP_STATE_ACTIVE);
	replay(f, "add-attribute-vm-tags", uid);
	assert_int_equal(f->msg->num_batch_items, 3);
	/* §5.12: the x- attributes come back. */
	replay(f, "get-attributes", uid);
	ga = f->msg->batch_items[0].response_payload;
	assert_int_equal(ga->num_attribute, 1);
	assert_int_equal(ga->attribute[0].attribute_value->len, strlen("7.0.3 build-19480866"));
	engine_fx_free(f);
}

int main(void)
{
	const char *dir = getenv("KEEL_VECTORS");
	char path[512];
	FILE *fp;
	long n;

	if (dir == NULL) {
		fprintf(stderr,
			"SKIPPED: KEEL_VECTORS is not set; the vCenter replay did not run\n");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/vcenter/vcenter-7.0.3-session.txt", dir);
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "SKIPPED: %s is absent; the vCenter replay did not run\n", path);
		return 0;
	}
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	session = calloc(1, (size_t)n + 2);
	session[0] = '\n';
	if (session == NULL || fread(session + 1, 1, (size_t)n, fp) != (size_t)n) {
		return 1;
	}
	fclose(fp);

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	free(session);
	return r;
}
