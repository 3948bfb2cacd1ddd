/* Shared SoftHSM2 fixture; see softhsm_fixture.h. */
#include "softhsm_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *fixture_module_path(void)
{
	const char *env = getenv("KEEL_SOFTHSM2_MODULE");

	return env != NULL ? env : KEEL_SOFTHSM2_MODULE;
}

void fixture_write_file(const char *path, const char *text, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, (mode_t)mode), 0);
	assert_int_equal(close(fd), 0);
}

/* softhsm2-util --init-token, quietly; returns its exit status. */
static int init_token(void)
{
	char *argv[] = {"softhsm2-util", "--init-token", "--free",   "--label",	     FIXTURE_LABEL,
			"--pin",	 FIXTURE_PIN,	 "--so-pin", FIXTURE_SO_PIN, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "softhsm2-util", &fa, NULL, argv, environ) == 0) {
		waitpid(pid, &st, 0);
	}
	posix_spawn_file_actions_destroy(&fa);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The token's own directory: the one subdirectory SoftHSM made under tokens/. */
static void find_token_sub(struct softhsm_fixture *f)
{
	DIR *d = opendir(f->tokens);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			snprintf(f->token_sub, sizeof(f->token_sub), "%s/%s", f->tokens, e->d_name);
		}
	}
	closedir(d);
	assert_true(f->token_sub[0] != '\0');
}

struct softhsm_fixture *fixture_new(void)
{
	struct softhsm_fixture *f = calloc(1, sizeof(*f));
	char conf[300], text[700];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/keel-hsm-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->tokens, sizeof(f->tokens), "%s/tokens", f->dir);
	snprintf(f->hidden, sizeof(f->hidden), "%s/hidden", f->dir);
	snprintf(f->pin_file, sizeof(f->pin_file), "%s/pin", f->dir);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", f->dir);
	assert_int_equal(mkdir(f->tokens, 0700), 0);
	snprintf(text, sizeof(text),
		 "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		 f->tokens);
	fixture_write_file(conf, text, 0600);
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
	assert_int_equal(init_token(), 0);
	find_token_sub(f);
	fixture_write_file(f->pin_file, FIXTURE_PIN "\n", 0600);
	return f;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void fixture_free(struct softhsm_fixture *f)
{
	if (f == NULL) {
		return;
	}
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
}

/* hsm.h: the log callback may be called from several threads at once. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void fixture_log(void *arg, enum hsm_log_level level, const char *msg)
{
	struct softhsm_fixture *f = arg;
	int n;

	pthread_mutex_lock(&log_mu);
	n = snprintf(f->log + f->log_len, sizeof(f->log) - f->log_len, "%s\n", msg);
	if (n > 0 && (size_t)n < sizeof(f->log) - f->log_len) {
		f->log_len += (size_t)n;
	}
	pthread_mutex_unlock(&log_mu);
	if (getenv("KEEL_TEST_VERBOSE") != NULL) {
		fprintf(stderr, "hsm[%d]: %s\n", (int)level, msg);
	}
}

void fixture_config(struct softhsm_fixture *f, struct hsm_config *out_cfg)
{
	*out_cfg = (struct hsm_config){
	    .module = fixture_module_path(),
	    .token_label = FIXTURE_LABEL,
	    .pin_file = f->pin_file,
	    .pool_size = 4,
	    .backoff_initial_ms = -1,
	    .log = fixture_log,
	    .log_arg = f,
	};
}

struct hsm *fixture_open(struct softhsm_fixture *f, enum hsm_wrap_mode mode)
{
	struct hsm_config cfg;
	struct hsm *h = NULL;

	fixture_config(f, &cfg);
	cfg.wrap_mode = mode;
	assert_int_equal(hsm_open(&cfg, &h), 0);
	assert_non_null(h);
	return h;
}

void fixture_token_hide(struct softhsm_fixture *f)
{
	assert_int_equal(rename(f->token_sub, f->hidden), 0);
}

void fixture_token_restore(struct softhsm_fixture *f)
{
	assert_int_equal(rename(f->hidden, f->token_sub), 0);
}

void fixture_tokens_hide(struct softhsm_fixture *f)
{
	assert_int_equal(rename(f->tokens, f->hidden), 0);
}

void fixture_tokens_restore(struct softhsm_fixture *f)
{
	assert_int_equal(rename(f->hidden, f->tokens), 0);
}

bool fixture_logged(const struct softhsm_fixture *f, const char *needle)
{
	return strstr(f->log, needle) != NULL;
}
