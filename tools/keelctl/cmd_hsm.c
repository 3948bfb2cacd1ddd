/*
 * keelctl hsm status|list|init-crk|import-crk|change-pin: the operator's view of the
 * PKCS#11 token that holds the customer root key (CRK). These commands open
 * the token directly, as softhsm2-util or pkcs11-tool would.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "keel/hsm.h"
#include "keelctl.h"

#define KEY_HEX_LEN ((size_t)2 * HSM_CRK_KEY_LEN)

struct hsm_opts {
	struct hsm_config cfg;
	bool json;
	bool extractable;
	const char *key_file;
	const char *new_pin_file;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keelctl hsm COMMAND --module NAME|PATH --token LABEL --pin-file FILE"
		" [--json]\n\n"
		"commands:\n"
		"  status                 module, slot, token, PIN state and CRK versions\n"
		"  list                   CRK versions with creation date and check value\n"
		"  init-crk [--extractable]\n"
		"                         generate CRK version N+1 inside the token (not\n"
		"                         extractable unless asked: then it can be escrowed)\n"
		"  import-crk --key-file FILE [--extractable]\n"
		"                         import 32 bytes of existing key material (raw or 64\n"
		"                         hex digits, file mode 0600) as CRK version N+1 (BYOK)\n"
		"  change-pin --new-pin-file FILE\n"
		"                         change the token's user PIN (C_SetPIN) to the one in\n"
		"                         FILE (mode 0600); stop keeld first, and give it the\n"
		"                         new PIN before it starts again\n\n"
		"--module takes a p11-kit module name (softhsm2) or a path to a PKCS#11 library.\n"
		"PINs are read from files (mode 0600), never from the command line.\n");
}

/* Maps an hsm error to an exit code that says what kind of failure it was. */
static int exit_code(int err)
{
	switch (err) {
	case HSM_E_PIN_INCORRECT:
	case HSM_E_PIN_LOCKED:
		return EX_NOPERM;
	case HSM_E_TOKEN_UNAVAILABLE:
		return EX_UNAVAILABLE;
	case HSM_E_MODULE_NOT_FOUND:
	case HSM_E_MODULE_INVALID:
	case HSM_E_MODULE_INIT:
	case HSM_E_TOKEN_NOT_FOUND:
	case HSM_E_PIN_FILE:
		return EX_CONFIG;
	case HSM_E_CRK_NOT_FOUND:
		return EX_DATAERR;
	default:
		return EX_SOFTWARE;
	}
}

static void print_kcv(const struct hsm_crk_info *c)
{
	if (c->has_kcv) {
		printf("%02x%02x%02x", c->kcv[0], c->kcv[1], c->kcv[2]);
	} else {
		printf("-");
	}
}

static json_t *kcv_json(const uint8_t kcv[static HSM_KCV_LEN])
{
	char hex[2 * HSM_KCV_LEN + 1];

	snprintf(hex, sizeof(hex), "%02x%02x%02x", kcv[0], kcv[1], kcv[2]);
	return json_string(hex);
}

static void print_crks_text(const struct hsm_crk_info *list, size_t num)
{
	if (num == 0) {
		printf("no CRK in this token: create one with 'keelctl hsm init-crk'\n");
		return;
	}
	printf("%-8s %-21s %-11s %-6s %s\n", "VERSION", "CREATED", "EXTRACTABLE", "ACTIVE", "KCV");
	for (size_t i = 0; i < num; i++) {
		printf("%-8u %-21s %-11s %-6s ", list[i].version,
		       list[i].created[0] != '\0' ? list[i].created : "-",
		       list[i].extractable ? "yes" : "no", list[i].active ? "yes" : "no");
		print_kcv(&list[i]);
		putchar('\n');
	}
}

static json_t *crks_json(const struct hsm_crk_info *list, size_t num)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < num; i++) {
		json_array_append_new(
		    arr, json_pack("{s:I, s:s, s:b, s:b, s:o}", "version",
				   (json_int_t)list[i].version, "created", list[i].created,
				   "extractable", list[i].extractable, "active", list[i].active,
				   "kcv", list[i].has_kcv ? kcv_json(list[i].kcv) : json_null()));
	}
	return arr;
}

/* Prints |j| as one line of JSON and releases it. */
static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(j);
}

static int list_crks(struct hsm *h, bool json)
{
	struct hsm_crk_info *list = NULL;
	size_t num = 0;
	int err;

	if ((err = hsm_crk_list(h, &list, &num)) != 0) {
		keelctl_err("cannot list CRK versions: %s", hsm_strerror(err));
		return exit_code(err);
	}
	if (json) {
		print_json(crks_json(list, num));
	} else {
		print_crks_text(list, num);
	}
	free(list);
	return 0;
}

static const char *state_name(enum hsm_state s)
{
	switch (s) {
	case HSM_STATE_READY:
		return "ready";
	case HSM_STATE_RECOVERING:
		return "recovering";
	default:
		return "pin-rejected";
	}
}

static void print_status_text(const struct hsm_info *in)
{
	printf("module:   %s (%s, %s %u.%u)\n", in->module_path, in->module_desc, in->module_vendor,
	       in->module_version_major, in->module_version_minor);
	printf("slot:     %lu (%s)\n", in->slot, in->slot_desc);
	printf("token:    %s (%s %s, serial %s)%s\n", in->token_label, in->token_vendor,
	       in->token_model, in->token_serial, in->token_present ? "" : " NOT PRESENT");
	printf("state:    %s; PIN %s\n", state_name(in->state),
	       in->pin_locked	   ? "LOCKED"
	       : in->pin_final_try ? "one try left"
	       : in->pin_count_low ? "has failed attempts"
				   : "ok");
	printf("sessions: %u of %u in use\n", in->pool_in_use, in->pool_size);
	printf("wrapping: %s; active CRK: ",
	       in->wrap_mode == HSM_WRAP_GCM ? "AES-256-GCM" : "AES-KWP");
	if (in->active_crk != 0) {
		printf("v%u\n", in->active_crk);
	} else {
		printf("none\n");
	}
}

static json_t *status_json(const struct hsm_info *in)
{
	char version[24];

	snprintf(version, sizeof(version), "%u.%u", in->module_version_major,
		 in->module_version_minor);
	return json_pack("{s:{s:s, s:s, s:s, s:s}, s:I, s:{s:s, s:s, s:s, s:b}, s:s, s:b, s:i, "
			 "s:i, s:I}",
			 "module", "path", in->module_path, "description", in->module_desc,
			 "vendor", in->module_vendor, "version", version, "slot",
			 (json_int_t)in->slot, "token", "label", in->token_label, "serial",
			 in->token_serial, "model", in->token_model, "present", in->token_present,
			 "state", state_name(in->state), "pin_locked", in->pin_locked, "sessions",
			 (int)in->pool_size, "sessions_in_use", (int)in->pool_in_use, "active_crk",
			 (json_int_t)in->active_crk);
}

static int status(struct hsm *h, bool json)
{
	struct hsm_info info;
	int err;

	if ((err = hsm_get_info(h, &info)) != 0) {
		keelctl_err("cannot read the token's status: %s", hsm_strerror(err));
		return exit_code(err);
	}
	if (json) {
		struct hsm_crk_info *list = NULL;
		size_t num = 0;
		json_t *j = status_json(&info);

		if ((err = hsm_crk_list(h, &list, &num)) == 0) {
			json_object_set_new(j, "crks", crks_json(list, num));
			free(list);
		}
		print_json(j);
		return err == 0 ? 0 : exit_code(err);
	}
	print_status_text(&info);
	printf("\n");
	return list_crks(h, false);
}

static int init_crk(struct hsm *h, const struct hsm_opts *o)
{
	uint32_t version;
	uint8_t kcv[HSM_KCV_LEN];
	int err;

	if ((err = hsm_crk_generate(h, o->extractable ? HSM_CRK_EXTRACTABLE : 0, &version)) != 0) {
		keelctl_err("cannot generate a CRK: %s", hsm_strerror(err));
		return exit_code(err);
	}
	if (hsm_crk_kcv(h, version, kcv) != 0) {
		memset(kcv, 0, sizeof(kcv));
	}
	if (o->json) {
		print_json(
		    json_pack("{s:I, s:o}", "version", (json_int_t)version, "kcv", kcv_json(kcv)));
	} else {
		printf("created CRK version %u (%s), check value %02x%02x%02x\n", version,
		       o->extractable ? "extractable for escrow" : "never leaves the token", kcv[0],
		       kcv[1], kcv[2]);
	}
	return 0;
}

/* Decodes 64 hex digits (surrounding white space allowed) or takes 32 raw bytes. */
static int parse_key(const uint8_t *buf, size_t len, uint8_t key[static HSM_CRK_KEY_LEN])
{
	size_t n = 0;

	if (len == HSM_CRK_KEY_LEN) {
		memcpy(key, buf, HSM_CRK_KEY_LEN);
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];
		int v = c >= '0' && c <= '9'			 ? c - '0'
			: (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
								 : -1;

		if (v < 0) {
			if (c == '\n' || c == '\r' || c == ' ' || c == '\t') {
				continue;
			}
			return -1;
		}
		if (n >= KEY_HEX_LEN) {
			return -1;
		}
		key[n / 2] = (uint8_t)(n % 2 == 0 ? v << 4 : key[n / 2] | v);
		n++;
	}
	return n == KEY_HEX_LEN ? 0 : -1;
}

/* Reads the key file, refusing one that others can read. */
static int read_key_file(const char *path, uint8_t key[static HSM_CRK_KEY_LEN])
{
	uint8_t buf[160];
	struct stat st;
	ssize_t n;
	int fd;
	int rc = EX_DATAERR;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
		keelctl_err("cannot open key file %s: %s", path, strerror(errno));
		rc = EX_NOINPUT;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		keelctl_err("key file %s must be a regular file with mode 0600 or stricter", path);
		goto out;
	}
	if ((n = read(fd, buf, sizeof(buf))) < 0 || parse_key(buf, (size_t)n, key) != 0) {
		keelctl_err("key file %s must hold 32 bytes, raw or as 64 hex digits", path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0) {
		close(fd);
	}
	return rc;
}

static int import_crk(struct hsm *h, const struct hsm_opts *o)
{
	uint8_t key[HSM_CRK_KEY_LEN];
	uint8_t kcv[HSM_KCV_LEN] = {0};
	uint32_t version = 0;
	int rc;
	int err;

	(void)mlock(key, sizeof(key)); /* best effort: keelctl may lack the privilege */
	if ((rc = read_key_file(o->key_file, key)) != 0) {
		goto out;
	}
	if ((err = hsm_crk_import(h, key, o->extractable ? HSM_CRK_EXTRACTABLE : 0, &version)) !=
	    0) {
		keelctl_err("cannot import the CRK: %s", hsm_strerror(err));
		rc = exit_code(err);
		goto out;
	}
	if (hsm_crk_kcv(h, version, kcv) != 0) {
		memset(kcv, 0, sizeof(kcv));
	}
	if (o->json) {
		print_json(
		    json_pack("{s:I, s:o}", "version", (json_int_t)version, "kcv", kcv_json(kcv)));
	} else {
		printf("imported CRK version %u, check value %02x%02x%02x: compare it with the"
		       " value recorded where the key came from\n",
		       version, kcv[0], kcv[1], kcv[2]);
	}
out:
	explicit_bzero(key, sizeof(key));
	(void)munlock(key, sizeof(key));
	return rc;
}

static int change_pin(struct hsm *h, const struct hsm_opts *o)
{
	int err = hsm_set_pin(h, o->new_pin_file);

	if (err == HSM_E_INVAL) {
		keelctl_err("the token refused the new PIN (its length or characters)");
		return EX_DATAERR;
	}
	if (err != 0) {
		keelctl_err("cannot change the PIN: %s", hsm_strerror(err));
		return exit_code(err);
	}
	if (o->json) {
		print_json(json_pack("{s:b}", "changed", 1));
	} else {
		printf("the token's user PIN was changed: give keeld the new one\n");
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct hsm_opts *o)
{
	static const struct option opts[] = {
	    {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'},
	    {"pin-file", required_argument, NULL, 'p'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"extractable", no_argument, NULL, 'x'},
	    {"json", no_argument, NULL, 'j'},
	    {"new-pin-file", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->cfg.module = optarg;
			break;
		case 't':
			o->cfg.token_label = optarg;
			break;
		case 'p':
			o->cfg.pin_file = optarg;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'x':
			o->extractable = true;
			break;
		case 'n':
			o->new_pin_file = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return EX_USAGE;
		}
	}
	if (o->cfg.module == NULL || o->cfg.token_label == NULL || o->cfg.pin_file == NULL ||
	    optind != argc) {
		keelctl_err("--module, --token and --pin-file are required, and nothing else");
		return EX_USAGE;
	}
	return 0;
}

/* Forwards the layer's messages to stderr: they never carry the PIN. */
static void log_stderr(void *arg, enum hsm_log_level level, const char *msg)
{
	if (level <= HSM_LOG_WARNING) {
		keelctl_err("%s", msg);
	}
}

static int run(const char *cmd, struct hsm_opts *o)
{
	struct hsm *h = NULL;
	int rc;
	int err;

	o->cfg.pool_size = 1;
	o->cfg.log = log_stderr;
	if ((err = hsm_open(&o->cfg, &h)) != 0) {
		keelctl_err("cannot open token '%s' through %s: %s", o->cfg.token_label,
			    o->cfg.module, hsm_strerror(err));
		return exit_code(err);
	}
	if (strcmp(cmd, "status") == 0) {
		rc = status(h, o->json);
	} else if (strcmp(cmd, "list") == 0) {
		rc = list_crks(h, o->json);
	} else if (strcmp(cmd, "init-crk") == 0) {
		rc = init_crk(h, o);
	} else if (strcmp(cmd, "change-pin") == 0) {
		rc = change_pin(h, o);
	} else {
		rc = import_crk(h, o);
	}
	hsm_close(h);
	return rc;
}

int keelctl_hsm(int argc, char **argv)
{
	static const char *const cmds[] = {"status", "list", "init-crk", "import-crk",
					   "change-pin"};
	struct hsm_opts o = {0};
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i]) != 0) {
			continue;
		}
		optind = 1;
		if ((rc = parse_opts(argc - 1, argv + 1, &o)) != 0) {
			return rc;
		}
		if (strcmp(cmds[i], "import-crk") == 0 && o.key_file == NULL) {
			keelctl_err("import-crk needs --key-file");
			return EX_USAGE;
		}
		if ((strcmp(cmds[i], "change-pin") == 0) != (o.new_pin_file != NULL)) {
			keelctl_err("--new-pin-file goes with change-pin, and change-pin needs it");
			return EX_USAGE;
		}
		return run(cmds[i], &o);
	}
	keelctl_err("unknown hsm command '%s'", argv[1]);
	usage(stderr);
	return EX_USAGE;
}
