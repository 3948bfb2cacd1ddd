/*
 * keeld --dev DIR: a complete appliance in one directory, for humans and
 * tests. The first start creates everything; later starts reuse it, keys
 * included, and never regenerate what exists. Fixed names, so that scripts
 * can rely on them:
 *
 *   DIR/keeld.conf                 a normal config file (relative paths)
 *   DIR/certs/ca.crt               the CA (its key: DIR/secrets/ca.key)
 *   DIR/certs/server.crt, .key     localhost, 127.0.0.1, ::1
 *   DIR/certs/client.crt, .key     registered: a copy is in DIR/clients/
 *   DIR/softhsm/                   the SoftHSM2 token and its softhsm2.conf
 *   DIR/secrets/user.pin, so.pin   the token's PINs (random, mode 0600)
 *   DIR/data/keel.db               the store
 *   DIR/discover-versions.ttlv     a KMIP 1.1 Discover Versions request
 */
#ifndef KEEL_DEV_H
#define KEEL_DEV_H

#include <limits.h>
#include <stdint.h>

#define KEEL_DEV_TOKEN_LABEL "keel-dev"

struct keel_dev {
	char dir[PATH_MAX]; /* absolute */
	char config_path[PATH_MAX + 16];
};

/*
 * Creates (or finds) everything but the CRK, which needs the open token
 * (keeld makes it), and sets SOFTHSM2_CONF for this process. 0 or -1, with
 * the reason logged.
 */
__attribute__((warn_unused_result)) int keel_dev_prepare(const char *dir, struct keel_dev *out);

/* Prints where everything is and a one-line KMIP check against |port|. */
void keel_dev_print(const struct keel_dev *dev, const char *host, uint16_t port);

#endif
