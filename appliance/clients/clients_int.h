/* Private to appliance/clients: snapshots, shared by clients.c and files.c. */
#ifndef KEEL_CLIENTS_INT_H
#define KEEL_CLIENTS_INT_H

#include <pthread.h>

#include "keel/clients.h"

struct pin {
	uint8_t fp[KEEL_FINGERPRINT_LEN];
	enum keel_role role;
};

struct snapshot {
	struct pin *pins; /* sorted by fingerprint (clients_snap_sort), for bsearch */
	size_t num_pins;
	X509_STORE *cas; /* trusted CAs; NULL when there is none */
	size_t num_cas;
};

void clients_snap_free(struct snapshot *s);
__attribute__((warn_unused_result)) int clients_snap_add_pin(struct snapshot *s, X509 *cert,
							     enum keel_role role);
__attribute__((warn_unused_result)) int clients_snap_add_ca(struct snapshot *s, X509 *cert);
void clients_snap_sort(struct snapshot *s);
/* Takes ownership of |snap| (also on failure). |store| NULL: never reloaded. */
__attribute__((warn_unused_result)) int
clients_holder_new(struct keel_store *store, struct snapshot *snap, struct keel_clients **out);

/* The holder's lock and current snapshot, for wire.c (read it under the lock). */
pthread_rwlock_t *clients_lock(struct keel_clients *c);
const struct snapshot *clients_snap(struct keel_clients *c);

#endif
