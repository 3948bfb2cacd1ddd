/* See store_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_check.h"

int64_t store_check_chain(struct keel_store *s)
{
	struct keel_store_audit_check c;
	struct keel_store_txn *t;

	assert_int_equal(keel_store_begin_read(s, &t), 0);
	assert_int_equal(keel_store_audit_verify(t, NULL, &c), 0);
	keel_store_rollback(t);
	assert_int_equal(c.fault, KEEL_AUDIT_INTACT);
	return c.num_rows;
}
