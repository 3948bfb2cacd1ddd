/* See engine_fixture.h. Reuses the hsm tests' SoftHSM2 fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softhsm_fixture.h"

static void set_identity(struct keel_client_identity *id, uint8_t fill, const char *subject)
{
	memset(id, 0, sizeof(*id));
	memset(id->fingerprint, fill, sizeof(id->fingerprint));
	for (size_t i = 0; i < KEEL_FINGERPRINT_LEN; i++) {
		snprintf(id->fingerprint_hex + 2 * i, 3, "%02x", fill);
	}
	snprintf(id->subject, sizeof(id->subject), "%s", subject);
}

static void after_prepare(void *arg)
{
	struct engine_fx *f = arg;
	void (*fn)(struct engine_fx *) = f->between;

	f->between = NULL;
	if (fn != NULL) {
		fn(f);
	}
}

struct engine_fx *engine_fx_new(void)
{
	struct engine_fx *f = calloc(1, sizeof(*f));
	struct keel_engine_config cfg = {0};

	assert_non_null(f);
	f->hsm_fx = fixture_new();
	assert_non_null(f->hsm_fx);
	f->hsm = fixture_open(f->hsm_fx, HSM_WRAP_GCM);
	assert_int_equal(hsm_crk_generate(f->hsm, 0, NULL), 0);
	snprintf(f->db_dir, sizeof(f->db_dir), "/tmp/keel-engine-XXXXXX");
	assert_non_null(mkdtemp(f->db_dir));
	snprintf(f->db_path, sizeof(f->db_path), "%s/keel.db", f->db_dir);
	cfg.store_path = f->db_path;
	cfg.hsm = f->hsm;
	cfg.max_batch_items = 8;
	cfg.after_prepare = after_prepare;
	cfg.after_prepare_arg = f;
	assert_int_equal(keel_engine_open(&cfg, &f->e), 0);
	set_identity(&f->alice, 0xaa, "CN=alice");
	set_identity(&f->bob, 0xbb, "CN=bob");
	return f;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void engine_fx_free(struct engine_fx *f)
{
	keel_engine_close(f->e);
	hsm_close(f->hsm);
	fixture_free(f->hsm_fx);
	nftw(f->db_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	kmip_arena_cleanup(&f->arena);
	free(f->resp);
	free(f);
}

static void capture(void *ctx, const uint8_t *resp, size_t len)
{
	struct engine_fx *f = ctx;

	free(f->resp);
	f->resp = NULL;
	f->resp_len = len;
	f->replies++;
	if (resp != NULL) {
		f->resp = malloc(len);
		assert_non_null(f->resp);
		memcpy(f->resp, resp, len);
	}
}

void engine_fx_send(struct engine_fx *f, const struct keel_client_identity *who, const uint8_t *req,
		    size_t len)
{
	int before = f->replies;

	keel_engine_handle(f->e, who, req, len, capture, f);
	assert_int_equal(f->replies, before + 1);
	assert_non_null(f->resp);
	kmip_arena_cleanup(&f->arena);
	kmip_arena_init(&f->arena, NULL, 0);
	assert_int_equal(kmip_response_decode(f->resp, f->resp_len, &kmip_default_limits, &f->arena,
					      &f->msg, NULL),
			 0);
}
