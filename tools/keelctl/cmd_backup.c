/*
 * keelctl backup create --out FILE | verify FILE | restore FILE: encrypted
 * archives of keeld's store and configuration (appliance/backup/backup.h).
 * The file travels to and from keeld as is: keelctl never holds a key.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "keelctl.h"

#define FILE_MAX (256u << 20) /* the local socket's limit in keeld */

enum { OPT_OUT = KEELCTL_OPT_FIRST_OWN, OPT_FORCE, OPT_CONFIG_OUT };

struct backup_opts {
	struct keelctl_api api;
	const char *out, *config_out;
	bool force;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: keelctl backup create --out FILE [options]\n"
		   "       keelctl backup verify FILE [options]\n"
		   "       keelctl backup restore FILE [--force] [--config-out FILE] [options]\n\n"
		   "create:  a consistent snapshot of the store and keeld.conf, encrypted and\n"
		   "         authenticated under a key wrapped by the active CRK in the token.\n"
		   "         Keys inside stay wrapped by the CRK; FILE is created with mode 0600.\n"
		   "verify:  checks FILE is intact and that this appliance's token opens it.\n"
		   "restore: replaces the store's content with FILE's, atomically, while keeld\n"
		   "         runs; refused if FILE was altered, if the token lacks its CRK\n"
		   "         versions, during a CRK rotation, or over a store holding keys\n"
		   "         unless --force. keeld.conf is not replaced: --config-out writes the\n"
		   "         archived one to compare. Backups made before a CRK rotation need the\n"
		   "         versions that rotation destroyed: make a new one after rotating.\n"
		   "  --out FILE         where create writes the backup (must not exist)\n"
		   "  --force            restore over a store that holds keys\n"
		   "  --config-out FILE  restore: write the archived keeld.conf "
		   "there\n" KEELCTL_API_USAGE);
}

static int read_all(const char *path, char **out, size_t *out_len)
{
	FILE *f = fopen(path, "rbe");
	struct stat st;
	char *buf = NULL;
	int r = EX_NOINPUT;

	if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		keelctl_err("%s: %s", path, f == NULL ? strerror(errno) : "not a regular file");
	} else if ((size_t)st.st_size > FILE_MAX || st.st_size == 0) {
		keelctl_err("%s: %s", path, st.st_size == 0 ? "empty" : "larger than any backup");
		r = EX_DATAERR;
	} else if ((buf = malloc((size_t)st.st_size)) == NULL) {
		r = EX_OSERR;
	} else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		keelctl_err("%s: short read", path);
	} else {
		*out = buf;
		*out_len = (size_t)st.st_size;
		buf = NULL;
		r = 0;
	}
	free(buf);
	if (f != NULL) {
		fclose(f);
	}
	return r;
}

/* Creates |path| (never over an existing file) with |len| bytes, mode 0600, synced. */
static int write_new(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t off = 0;
	ssize_t n = 0;

	if (fd < 0) {
		keelctl_err("%s: %s", path, strerror(errno));
		return EX_CANTCREAT;
	}
	while (off < len && (n = write(fd, data + off, len - off)) > 0) {
		off += (size_t)n;
	}
	if (off != len || fsync(fd) != 0 || close(fd) != 0) {
		keelctl_err("%s: cannot write: %s", path, strerror(errno));
		(void)unlink(path);
		return EX_IOERR;
	}
	return 0;
}

static void print_info(const char *what, const char *file, const json_t *j)
{
	time_t created = (time_t)json_integer_value(json_object_get(j, "created"));
	char when[32] = "?";
	struct tm tm;

	if (gmtime_r(&created, &tm) != NULL) {
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf("%s %s: made %s, %lld objects, CRK version %lld (KCV %s), format %lld\n", what, file,
	       when, (long long)json_integer_value(json_object_get(j, "objects")),
	       (long long)json_integer_value(json_object_get(j, "crk_version")),
	       json_string_value(json_object_get(j, "kcv")),
	       (long long)json_integer_value(json_object_get(j, "format")));
}

static int create(const struct backup_opts *o)
{
	char *file = NULL;
	size_t len = 0;
	int r;

	if (o->out == NULL) {
		keelctl_err("backup create needs --out FILE");
		return EX_USAGE;
	}
	if (access(o->out, F_OK) == 0) {
		keelctl_err("%s exists; keelctl never overwrites a backup", o->out);
		return EX_CANTCREAT;
	}
	if ((r = keelctl_api_send(&o->api, "POST", "/v1/backup", NULL, 0, NULL, &file, &len)) ==
		0 &&
	    (r = write_new(o->out, file, len)) == 0) {
		printf("wrote %s (%zu bytes); check it with keelctl backup verify %s\n", o->out,
		       len, o->out);
	}
	free(file);
	return r;
}

/* Sends FILE to |path| and prints keeld's JSON answer. */
static int send_file(const struct backup_opts *o, const char *path, const char *file,
		     const char *what, json_t **out)
{
	char *data = NULL, *resp = NULL;
	size_t len = 0, resp_len = 0;
	int r;

	*out = NULL;
	if ((r = read_all(file, &data, &len)) != 0 ||
	    (r = keelctl_api_send(&o->api, "POST", path, data, len, "application/octet-stream",
				  &resp, &resp_len)) != 0) {
		goto out;
	}
	if ((*out = json_loadb(resp, resp_len, 0, NULL)) == NULL) {
		keelctl_err("keeld answered something that is not JSON");
		r = EX_PROTOCOL;
	} else if (o->api.json) {
		keelctl_print_json(*out);
	} else {
		print_info(what, file, *out);
	}
out:
	free(data);
	free(resp);
	return r;
}

static int restore(const struct backup_opts *o, const char *file)
{
	const char *config;
	json_t *out = NULL;
	int r = send_file(o, o->force ? "/v1/backup/restore?force=true" : "/v1/backup/restore",
			  file, "restored", &out);

	config = json_string_value(json_object_get(out, "config"));
	if (r == 0 && o->config_out != NULL) {
		r = config != NULL ? write_new(o->config_out, config, strlen(config)) : EX_DATAERR;
	}
	json_decref(out);
	return r;
}

static int parse(int argc, char **argv, struct backup_opts *o)
{
	static const struct option opts[] = {
	    KEELCTL_API_LONGOPTS,
	    {"out", required_argument, NULL, OPT_OUT},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"config-out", required_argument, NULL, OPT_CONFIG_OUT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (keelctl_api_option(&o->api, c, optarg)) {
			continue;
		}
		switch (c) {
		case OPT_OUT:
			o->out = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_CONFIG_OUT:
			o->config_out = optarg;
			break;
		default:
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? -1 : EX_USAGE;
		}
	}
	return 0;
}

int keelctl_backup(int argc, char **argv)
{
	struct backup_opts o = {0};
	const char *cmd;
	json_t *out = NULL;
	int r = parse(argc, argv, &o);

	if (r != 0) {
		return r < 0 ? 0 : r;
	}
	cmd = optind < argc ? argv[optind] : "";
	if (strcmp(cmd, "create") == 0 && optind + 1 == argc) {
		return create(&o);
	}
	if (strcmp(cmd, "verify") == 0 && optind + 2 == argc) {
		r = send_file(&o, "/v1/backup/verify", argv[optind + 1], "verified", &out);
		json_decref(out);
		return r;
	}
	if (strcmp(cmd, "restore") == 0 && optind + 2 == argc) {
		return restore(&o, argv[optind + 1]);
	}
	usage(stderr);
	return EX_USAGE;
}
