/*
 * keeld's seccomp allow-list. What is on it was measured, not guessed:
 * `strace -f` of keeld over the integration suite (every test that starts
 * keeld, the mirror's against the Key Protect emulator), counting only the
 * calls made after the filter is installed; docs/hardening.md has the
 * command. Start-up calls (bind, listen, setuid, dlopen of the module, ...)
 * are not here: they happen before.
 *
 * Who calls what, beyond keeld's own code: glibc (malloc, threads, DNS
 * through getaddrinfo and NSS), OpenSSL, libevent (epoll), SQLite (WAL:
 * pread/pwrite, fsync, fcntl locks, mmap of the -shm file), SoftHSM2 through
 * p11-kit (a file per token object, fcntl locks, directory listings),
 * libcurl (the mirror's HTTPS and its resolver thread), libconfig (SIGHUP).
 */
#include "keel/sandbox.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "log.h"

#define NET  KEEL_SANDBOX_NET
#define KEYS KEEL_SANDBOX_KEYS
#define BOTH KEEL_SANDBOX_KEELD

struct allowed {
	int nr;
	unsigned roles;
};

/* clang-format off */
static const struct allowed allowed[] = {
	/* memory: malloc, thread stacks, SQLite's -shm mapping, locked secret pages */
	{SCMP_SYS(brk), BOTH},
	{SCMP_SYS(mmap), BOTH},
	{SCMP_SYS(munmap), BOTH},
	{SCMP_SYS(mprotect), BOTH},		/* guard pages of new threads' stacks */
	{SCMP_SYS(madvise), BOTH},		/* MADV_DONTDUMP on secrets; glibc's free */
	{SCMP_SYS(mlock), BOTH},		/* secrets (libhsm), TLS buffers */
	{SCMP_SYS(munlock), KEYS},		/* a secret's pages freed (hsm/src/secmem.c) */
	{SCMP_SYS(mremap), BOTH},		/* realloc of a large block (not seen in tests) */
	/* threads (clone and clone3: add_conditional; the network process
	 * starts its loop threads before its filter and none after), signals,
	 * time */
	{SCMP_SYS(futex), BOTH},
	{SCMP_SYS(set_robust_list), KEYS},	/* each new thread */
	{SCMP_SYS(rseq), KEYS},			/* each new thread */
	{SCMP_SYS(exit), BOTH},
	{SCMP_SYS(exit_group), BOTH},
	{SCMP_SYS(wait4), KEYS},		/* the key process reaps the network one */
	{SCMP_SYS(getpid), BOTH},		/* OpenSSL's fork check, per record */
	{SCMP_SYS(rt_sigaction), BOTH},
	{SCMP_SYS(rt_sigprocmask), BOTH},
	{SCMP_SYS(rt_sigreturn), BOTH},		/* SIGHUP and SIGTERM handlers return */
	{SCMP_SYS(restart_syscall), BOTH},	/* a sleep or poll resumed after SIGSTOP */
	{SCMP_SYS(clock_nanosleep), BOTH},	/* CRK rotation's pause, mirror backoff */
	{SCMP_SYS(clock_gettime), BOTH},	/* the vDSO falls back to it on some */
	{SCMP_SYS(gettimeofday), BOTH},		/* hypervisors' clock sources */
	{SCMP_SYS(getrandom), BOTH},		/* OpenSSL's DRBG */
	/* files: SQLite, SoftHSM2's token objects, TLS and client files on SIGHUP;
	 * the network process opens none (keel_sandbox_apply reads first what
	 * glibc would open lazily) */
	{SCMP_SYS(openat), KEYS},
	{SCMP_SYS(close), BOTH},
	{SCMP_SYS(read), BOTH},
	{SCMP_SYS(write), BOTH},		/* the log is stderr */
	{SCMP_SYS(readv), BOTH},		/* libevent */
	{SCMP_SYS(writev), BOTH},
	{SCMP_SYS(pread64), KEYS},		/* SQLite pages */
	{SCMP_SYS(pwrite64), KEYS},
	{SCMP_SYS(lseek), KEYS},
	{SCMP_SYS(fstat), KEYS},
	{SCMP_SYS(newfstatat), KEYS},
	{SCMP_SYS(fcntl), BOTH},		/* SQLite's and SoftHSM2's locks; O_NONBLOCK */
	{SCMP_SYS(fsync), KEYS},
	{SCMP_SYS(fdatasync), KEYS},		/* SQLite's commits */
	{SCMP_SYS(ftruncate), KEYS},		/* SQLite's WAL reset */
	{SCMP_SYS(unlink), KEYS},		/* SoftHSM2's destroyed objects */
	{SCMP_SYS(rename), KEYS},		/* files the admin API writes whole */
	{SCMP_SYS(getdents64), KEYS},		/* token and clients directories */
	{SCMP_SYS(access), KEYS},		/* SoftHSM2, SQLite's journal checks */
	{SCMP_SYS(readlink), KEYS},		/* SoftHSM2 */
	{SCMP_SYS(ioctl), BOTH},		/* FIONREAD (libevent, the resolver) */
	/* sockets and polling: clients, the admin API, the mirror's HTTPS */
	{SCMP_SYS(accept4), BOTH},
	{SCMP_SYS(socket), KEYS},		/* the mirror's connections and DNS */
	{SCMP_SYS(connect), KEYS},
	{SCMP_SYS(socketpair), KEYS},		/* libcurl's resolver thread wake-up */
	{SCMP_SYS(getsockname), BOTH},
	{SCMP_SYS(getpeername), BOTH},
	{SCMP_SYS(setsockopt), BOTH},
	{SCMP_SYS(getsockopt), BOTH},
	{SCMP_SYS(sendto), BOTH},
	{SCMP_SYS(recvfrom), BOTH},
	{SCMP_SYS(sendmsg), BOTH},		/* privsep's frames (appliance/privsep) */
	{SCMP_SYS(shutdown), BOTH},
	{SCMP_SYS(poll), KEYS},			/* libcurl, the resolver */
	{SCMP_SYS(epoll_ctl), BOTH},		/* libevent */
	{SCMP_SYS(epoll_wait), BOTH},
	/* glibc's resolver for a host name (tests use addresses): a lookup
	 * under this filter was traced in addition to the suite */
	{SCMP_SYS(uname), KEYS},
	{SCMP_SYS(sendmmsg), KEYS},		/* the A and AAAA queries at once */
};
/* clang-format on */

const char *keel_sandbox_mode_name(enum keel_sandbox_mode mode)
{
	static const char *const names[] = {"kill", "log", "off"};

	return (unsigned)mode < sizeof(names) / sizeof(names[0]) ? names[mode] : "?";
}

/*
 * The calls allowed only with some arguments. Threads, never processes, and
 * only in the key process (the network process starts its loop threads before
 * its filter, which TSYNC installs on them too: any clone kills it): clone only
 * with CLONE_THREAD; clone3 passes its flags in memory the filter
 * cannot read, so it answers ENOSYS and glibc falls back to clone. Signals
 * only to keeld itself (the admin API raises SIGHUP; abort raises SIGABRT with
 * tgkill, never seen in tests, but it must end as SIGABRT, not SIGSYS).
 * prctl only to name a thread: a GLib thread that a PKCS#11 module p11-kit
 * loads (OpenSC's) starts before the filter and may name itself after it;
 * the suite under the filter found it (a kill, once in a few runs).
 */
/* SCMP_A0 with one value leaves datum_b to the compiler, which clang's
 * -Wmissing-field-initializers refuses. */
static struct scmp_arg_cmp arg0_is(scmp_datum_t value)
{
	return (struct scmp_arg_cmp){.arg = 0, .op = SCMP_CMP_EQ, .datum_a = value, .datum_b = 0};
}

static int add_threads(scmp_filter_ctx ctx)
{
	int r;

	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) != 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0) {
		return r;
	}
	return 0;
}

static int add_conditional(scmp_filter_ctx ctx, unsigned roles)
{
	const pid_t self = getpid();
	int r;

	if (((roles & KEYS) != 0 && (r = add_threads(ctx)) != 0) ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				  arg0_is((scmp_datum_t)self))) != 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				  arg0_is((scmp_datum_t)self))) != 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, arg0_is(PR_SET_NAME))) !=
		0) {
		return r;
	}
	return 0;
}

static int build(scmp_filter_ctx ctx, unsigned roles, size_t *out_num)
{
	int r;

	*out_num = 0;
	/* Every thread, those already running included (the admin API's). */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0) {
		return r;
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if ((allowed[i].roles & roles) == 0) {
			continue;
		}
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i].nr, 0)) != 0) {
			return r;
		}
		(*out_num)++;
	}
	/*
	 * A process without files (the network process) gets EACCES from any
	 * open rather than being killed: glibc opens lazily and copes with a
	 * refusal, e.g. /proc/sys/vm/overcommit_memory the first time a thread's
	 * malloc arena shrinks (malloc_trim after a burst of handshakes), which
	 * killed the network process with 10,000 connections open when it still
	 * had reader threads. No open succeeds either way.
	 */
	if ((roles & KEYS) == 0 &&
	    ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0)) != 0 ||
	     (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0)) != 0)) {
		return r;
	}
	return add_conditional(ctx, roles);
}

int keel_sandbox_apply(unsigned roles, enum keel_sandbox_mode mode)
{
	scmp_filter_ctx ctx;
	size_t num = 0;
	int r;

	if (mode == KEEL_SANDBOX_OFF) {
		keel_notice("seccomp: off, keeld may make any system call");
		return 0;
	}
	if (RUNNING_ON_VALGRIND) {
		/* The filter would hold valgrind's own calls too (tools/memcheck). */
		keel_notice("seccomp: off under valgrind");
		return 0;
	}
	/* What glibc reads lazily, read now, while files may still be opened (the
	 * network process's list has no openat): /etc/localtime, at the first
	 * time conversion (OpenSSL's check of a client certificate's dates), and
	 * /sys/devices/system/cpu/online, when a thread needs a new malloc arena
	 * and glibc first sizes their number (8 per CPU, its default). */
	tzset();
	(void)mallopt(M_ARENA_MAX, 8 * get_nprocs());
	ctx = seccomp_init(mode == KEEL_SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		keel_err("seccomp: cannot make a filter");
		return -1;
	}
	if ((r = build(ctx, roles, &num)) != 0 || (r = seccomp_load(ctx)) != 0) {
		keel_err("seccomp: cannot install the filter: %s", strerror(-r));
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	keel_info("seccomp: %zu system calls allowed, any other %s", num,
		  mode == KEEL_SANDBOX_LOG ? "logged (debug mode)" : "kills the process");
	return 0;
}
