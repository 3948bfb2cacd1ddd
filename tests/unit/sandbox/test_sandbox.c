/*
 * keel_sandbox: the filter keeld installs, installed in a forked child that
 * then tries a call. A call off the list kills the child with SIGSYS in
 * "kill" mode and is allowed in "log" mode; what keeld does after start-up
 * (threads, files, randomness, signals to itself) still works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/sandbox.h"

/* Under ASan, LSan and TSan the runtime makes calls of its own (keeld's filter is
 * off there by default); what must die still dies. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* In the child, after the filter: 0 means the call did what it should. */
typedef int (*probe_fn)(void);

/* The child's exit status (0-255), or 1000 + the signal that ended it,
 * under the filter of the processes |roles|. */
static int run_as(unsigned roles, enum keel_sandbox_mode mode, probe_fn probe)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (keel_sandbox_apply(roles, mode) != 0) {
			_exit(100);
		}
		_exit(probe() == 0 ? 0 : 101);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int run_sandboxed(enum keel_sandbox_mode mode, probe_fn probe)
{
	return run_as(KEEL_SANDBOX_KEELD, mode, probe);
}

static int seccomp_field(void)
{
	char line[256];
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Seccomp: %d", &mode) == 1) {
			break;
		}
	}
	fclose(f);
	return mode;
}

static int probe_execve(void)
{
	char *const argv[] = {"true", NULL};

	execv("/bin/true", argv);
	return -1;
}

static int probe_ptrace(void)
{
	return (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 0 : -1;
}

static int probe_fork(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		_exit(0);
	}
	return pid > 0 ? 0 : -1;
}

static int probe_kill_other(void)
{
	return kill(getppid() == 1 ? 2 : getppid(), 0);
}

/* getppid is on no list: a harmless call to tell "kill" from "log". */
static int probe_getppid(void)
{
	return syscall(SYS_getppid) > 0 ? 0 : -1;
}

static void *thread_main(void *arg)
{
	uint8_t buf[32];

	return getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? arg : NULL;
}

/* What keeld does all day: threads, files, randomness, its own signals. */
static int probe_allowed(void)
{
	pthread_t t;
	void *ret = NULL;
	char buf[16];
	int fd;

	if (seccomp_field() != 2 || pthread_create(&t, NULL, thread_main, buf) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != buf) {
		return -1;
	}
	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0 ||
	    read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || close(fd) != 0) {
		return -1;
	}
	signal(SIGHUP, SIG_IGN);
	if (kill(getpid(), SIGHUP) != 0) {
		return -1;
	}
	/* clone3 hides its flags from the filter: ENOSYS, glibc uses clone. */
	errno = 0;
	return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : -1;
}

/* The network process's day on its one thread: randomness, a client
 * certificate's dates (gmtime_r: glibc's time zone, read before the filter),
 * signals to itself; no file, no thread. */
static int probe_network_work(void)
{
	char buf[16];
	time_t now = time(NULL);
	struct tm tm;

	if (thread_main(buf) != buf || gmtime_r(&now, &tm) == NULL) {
		return -1;
	}
	signal(SIGHUP, SIG_IGN);
	return kill(getpid(), SIGHUP);
}

static int probe_thread(void)
{
	pthread_t t;
	char buf[16];

	return pthread_create(&t, NULL, thread_main, buf) == 0 && pthread_join(t, NULL) == 0 ? 0
											     : -1;
}

static int probe_open(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	return fd >= 0 && close(fd) == 0 ? 0 : -1;
}

static int probe_open_refused(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES &&
		       openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES
		   ? 0
		   : -1;
}

/* The mirror's host name, through glibc's resolver (/etc/hosts here). */
static int probe_resolve(void)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo("localhost", "443", &hints, &res);

	freeaddrinfo(res);
	return r;
}

static int probe_unfiltered(void)
{
	return seccomp_field() == 0 && probe_getppid() == 0 ? 0 : -1;
}

static void test_forbidden_calls_kill(void **state)
{
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_execve), 1000 + SIGSYS);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_ptrace), 1000 + SIGSYS);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_fork), 1000 + SIGSYS);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_kill_other), 1000 + SIGSYS);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_getppid), 1000 + SIGSYS);
}

static void test_daily_work_allowed(void **state)
{
#ifdef SANITIZED
	skip();
#endif
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_allowed), 0);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_KILL, probe_resolve), 0);
}

/* Each process of the privilege-separated keeld has its own list: the
 * network process opens no file, as open answers EACCES (glibc's lazy opens
 * cope with a refusal, sandbox.c), and forking or starting a thread kills it
 * (docs/hardening.md). The key process starts threads. */
static void test_network_process_opens_no_file(void **state)
{
#ifdef SANITIZED
	/* A probe that exits normally runs LSan's leak check, whose calls the list kills. */
	(void)probe_open_refused;
#else
	assert_int_equal(run_as(KEEL_SANDBOX_NET, KEEL_SANDBOX_KILL, probe_open_refused), 0);
	assert_int_equal(run_as(KEEL_SANDBOX_KEYS, KEEL_SANDBOX_KILL, probe_thread), 0);
#endif
	assert_int_equal(run_as(KEEL_SANDBOX_NET, KEEL_SANDBOX_KILL, probe_fork), 1000 + SIGSYS);
	assert_int_equal(run_as(KEEL_SANDBOX_NET, KEEL_SANDBOX_KILL, probe_thread), 1000 + SIGSYS);
}

static void test_each_process_does_its_work(void **state)
{
#ifdef SANITIZED
	skip();
#endif
	assert_int_equal(run_as(KEEL_SANDBOX_NET, KEEL_SANDBOX_KILL, probe_network_work), 0);
	assert_int_equal(run_as(KEEL_SANDBOX_KEYS, KEEL_SANDBOX_KILL, probe_open), 0);
	assert_int_equal(run_as(KEEL_SANDBOX_KEYS, KEEL_SANDBOX_KILL, probe_resolve), 0);
}

static void test_log_mode_allows(void **state)
{
#ifdef SANITIZED
	skip();
#endif
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_LOG, probe_getppid), 0);
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_LOG, probe_allowed), 0);
}

static void test_off_installs_nothing(void **state)
{
	assert_int_equal(run_sandboxed(KEEL_SANDBOX_OFF, probe_unfiltered), 0);
	assert_string_equal(keel_sandbox_mode_name(KEEL_SANDBOX_LOG), "log");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forbidden_calls_kill),
	    cmocka_unit_test(test_daily_work_allowed),
	    cmocka_unit_test(test_network_process_opens_no_file),
	    cmocka_unit_test(test_each_process_does_its_work),
	    cmocka_unit_test(test_log_mode_allows),
	    cmocka_unit_test(test_off_installs_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
