/*
 * hsm-bench: AES-GCM wrap and unwrap operations per second through libhsm
 * with 1, 2 and 4 threads, side by side with the raw C_DecryptInit+C_Decrypt
 * rate of the same token in the same run (the ceiling for unwrap; issue 3).
 *
 * Without --module it makes its own SoftHSM2 token in a temporary directory
 * (softhsm2-util must be on PATH) and removes it afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/hsm.h"

#define MAX_THREADS 64
#define BENCH_UID   "bench-object-0001"

enum bench_op { OP_RAW, OP_UNWRAP, OP_WRAP, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"raw C_Decrypt", "unwrap", "wrap"};

struct bench {
	struct hsm *h;
	uint8_t key[HSM_MAX_KEY_LEN];
	size_t key_len;
	uint8_t *blob;
	size_t blob_len;
	unsigned long ops; /* per thread */
	unsigned repeat;
	unsigned threads[8];
	size_t num_threads;
	char tmp[256]; /* temporary SoftHSM directory, "" if none */
};

struct job {
	struct bench *b;
	pthread_barrier_t *start;
	enum bench_op op;
	int err;
};

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: hsm-bench [--module NAME|PATH --token LABEL --pin-file FILE]\n"
	    "                 [--threads 1,2,4] [--ops N] [--repeat N] [--key-len N] [--pool N]\n"
	    "Without --module, a temporary SoftHSM2 token is created and removed.\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_op(struct bench *b, enum bench_op op)
{
	const uint8_t *uid = (const uint8_t *)BENCH_UID;
	const size_t uid_len = sizeof(BENCH_UID) - 1;
	struct hsm_secret *s = NULL;
	uint8_t *blob = NULL;
	size_t len;
	int r;

	switch (op) {
	case OP_RAW:
		return hsm_diag_raw_decrypt(b->h, uid, uid_len, b->blob, b->blob_len, b->ops);
	case OP_UNWRAP:
		r = hsm_unwrap(b->h, uid, uid_len, b->blob, b->blob_len, &s);
		hsm_secret_free(s);
		return r;
	default:
		r = hsm_wrap(b->h, uid, uid_len, b->key, b->key_len, &blob, &len);
		free(blob);
		return r;
	}
}

static void *job_main(void *arg)
{
	struct job *j = arg;

	pthread_barrier_wait(j->start);
	if (j->op == OP_RAW) {
		j->err = one_op(j->b, OP_RAW); /* runs all iterations on one session */
	} else {
		for (unsigned long i = 0; i < j->b->ops && j->err == 0; i++) {
			j->err = one_op(j->b, j->op);
		}
	}
	return NULL;
}

/* Runs b->ops operations in each of n threads; returns operations per second. */
static double run(struct bench *b, enum bench_op op, unsigned n)
{
	struct job jobs[MAX_THREADS];
	pthread_t t[MAX_THREADS];
	pthread_barrier_t start;
	double t0, t1;
	int err = 0;

	pthread_barrier_init(&start, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		jobs[i] = (struct job){.b = b, .op = op, .start = &start};
		pthread_create(&t[i], NULL, job_main, &jobs[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		err = err != 0 ? err : jobs[i].err;
	}
	t1 = now_s();
	pthread_barrier_destroy(&start);
	if (err != 0) {
		fprintf(stderr, "hsm-bench: %s: %s\n", op_names[op], hsm_strerror(err));
		exit(1);
	}
	return (double)n * (double)b->ops / (t1 - t0);
}

static int cmp_double(const void *a, const void *c)
{
	double x = *(const double *)a, y = *(const double *)c;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	return v[n / 2];
}

static void report(struct bench *b)
{
	double v[OP_COUNT][16], r[OP_COUNT];

	printf("| threads | wrap ops/s | unwrap ops/s | raw C_Decrypt ops/s | unwrap / raw |\n");
	printf("|--------:|-----------:|-------------:|--------------------:|-------------:|\n");
	for (size_t i = 0; i < b->num_threads; i++) {
		/* Rounds interleave the three, so load drift hits them alike. */
		for (unsigned k = 0; k < b->repeat; k++) {
			for (int op = 0; op < OP_COUNT; op++) {
				v[op][k] = run(b, (enum bench_op)op, b->threads[i]);
			}
		}
		for (int op = 0; op < OP_COUNT; op++) {
			r[op] = median(v[op], b->repeat);
		}
		printf("| %7u | %10.0f | %12.0f | %19.0f | %11.1f%% |\n", b->threads[i], r[OP_WRAP],
		       r[OP_UNWRAP], r[OP_RAW], 100.0 * r[OP_UNWRAP] / r[OP_RAW]);
		fflush(stdout);
	}
}

static void log_stderr(void *arg, enum hsm_log_level level, const char *msg)
{
	if (level <= HSM_LOG_WARNING) {
		fprintf(stderr, "hsm: %s\n", msg);
	}
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		return -1;
	}
	fputs(text, f);
	return fclose(f) == 0 && chmod(path, 0600) == 0 ? 0 : -1;
}

/* A throwaway SoftHSM2 token: softhsm2.conf, token, PIN file in b->tmp. */
static int temp_token(struct bench *b, struct hsm_config *cfg, char *pin_path, size_t pin_len)
{
	char conf[512], text[1024];
	char *argv[] = {"softhsm2-util", "--init-token", "--free",   "--label",	     "hsm-bench",
			"--pin",	 "bench-pin",	 "--so-pin", "bench-so-pin", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = -1;

	snprintf(b->tmp, sizeof(b->tmp), "%s/hsm-bench-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(b->tmp) == NULL) {
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", b->tmp);
	snprintf(text, sizeof(text),
		 "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		 b->tmp);
	snprintf(pin_path, pin_len, "%s/pin", b->tmp);
	if (write_file(conf, text) != 0 || write_file(pin_path, "bench-pin") != 0 ||
	    setenv("SOFTHSM2_CONF", conf, 1) != 0) {
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "softhsm2-util", &fa, NULL, argv, environ) == 0) {
		waitpid(pid, &st, 0);
	}
	posix_spawn_file_actions_destroy(&fa);
	cfg->module = "softhsm2";
	cfg->token_label = "hsm-bench";
	cfg->pin_file = pin_path;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int parse_threads(struct bench *b, const char *arg)
{
	char *end;
	unsigned long v;

	b->num_threads = 0;
	do {
		v = strtoul(arg, &end, 10);
		if (end == arg || v == 0 || v > MAX_THREADS ||
		    b->num_threads == sizeof(b->threads) / sizeof(b->threads[0])) {
			return -1;
		}
		b->threads[b->num_threads++] = (unsigned)v;
		arg = end + 1;
	} while (*end == ',');
	return *end == '\0' ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct bench *b, struct hsm_config *cfg)
{
	static const struct option opts[] = {
	    {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'},
	    {"pin-file", required_argument, NULL, 'p'},
	    {"threads", required_argument, NULL, 'n'},
	    {"ops", required_argument, NULL, 'o'},
	    {"repeat", required_argument, NULL, 'r'},
	    {"key-len", required_argument, NULL, 'k'},
	    {"pool", required_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			cfg->module = optarg;
			break;
		case 't':
			cfg->token_label = optarg;
			break;
		case 'p':
			cfg->pin_file = optarg;
			break;
		case 'n':
			if (parse_threads(b, optarg) != 0)
				return -1;
			break;
		case 'o':
			b->ops = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			b->repeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			b->key_len = strtoul(optarg, NULL, 10);
			break;
		case 'P':
			cfg->pool_size = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (b->ops == 0 || b->repeat == 0 || b->repeat > 15 || b->key_len == 0 ||
	    b->key_len > HSM_MAX_KEY_LEN || optind != argc ||
	    (cfg->module != NULL && (cfg->token_label == NULL || cfg->pin_file == NULL))) {
		return -1;
	}
	return 0;
}

static int prepare(struct bench *b)
{
	uint32_t v;
	int r;

	if ((r = hsm_crk_active(b->h, &v)) == HSM_E_CRK_NOT_FOUND && b->tmp[0] != '\0') {
		r = hsm_crk_generate(b->h, 0, &v);
	}
	if (r == 0 && (r = hsm_random(b->h, b->key, b->key_len)) == 0) {
		r = hsm_wrap(b->h, (const uint8_t *)BENCH_UID, sizeof(BENCH_UID) - 1, b->key,
			     b->key_len, &b->blob, &b->blob_len);
	}
	return r;
}

int main(int argc, char **argv)
{
	static struct bench b = {
	    .ops = 20000, .repeat = 3, .key_len = 32, .threads = {1, 2, 4}, .num_threads = 3};
	struct hsm_config cfg = {.pool_size = 8, .log = log_stderr};
	struct hsm_info info;
	char pin[300];
	int r;

	if (parse_args(argc, argv, &b, &cfg) != 0) {
		usage();
		return 2;
	}
	if (cfg.module == NULL && temp_token(&b, &cfg, pin, sizeof(pin)) != 0) {
		fprintf(stderr, "hsm-bench: cannot create a temporary SoftHSM2 token: %s\n",
			strerror(errno));
		return 1;
	}
	if ((r = hsm_open(&cfg, &b.h)) != 0 || (r = prepare(&b)) != 0 ||
	    (r = hsm_get_info(b.h, &info)) != 0) {
		fprintf(stderr, "hsm-bench: %s\n", hsm_strerror(r));
		return 1;
	}
	printf("module %s (%s %u.%u), token \"%s\", pool %u, key %zu bytes, %lu ops/thread, "
	       "median of %u\n\n",
	       info.module_path, info.module_desc, info.module_version_major,
	       info.module_version_minor, info.token_label, info.pool_size, b.key_len, b.ops,
	       b.repeat);
	report(&b);
	free(b.blob);
	hsm_close(b.h);
	if (b.tmp[0] != '\0') {
		nftw(b.tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	return 0;
}
