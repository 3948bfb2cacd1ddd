/*
 * keel_sandbox: keeld's seccomp allow-list (libseccomp). Installed once
 * start-up is over (sockets bound, token and store open, privileges
 * dropped), for every thread of the process; a system call off the list
 * kills the process (SIGSYS), or in the "log" debug mode is allowed and
 * logged by the kernel (audit type=1326 in the kernel log or journal).
 *
 * The list is one table in sandbox.c. Each row names the processes that
 * need the call, so that the privilege-separated keeld (a network process
 * and a key-holding process) installs a narrower filter in each.
 */
#ifndef KEEL_SANDBOX_H
#define KEEL_SANDBOX_H

enum keel_sandbox_mode {
	KEEL_SANDBOX_KILL = 0, /* production: anything else kills the process */
	KEEL_SANDBOX_LOG = 1,  /* debugging: anything else is allowed and logged */
	KEEL_SANDBOX_OFF = 2,  /* no filter (sanitizer builds: LSan ptraces at exit) */
};

/* Roles, a bit set: which processes need a system call. */
#define KEEL_SANDBOX_NET   0x1u /* TLS, framing, decoding: talks to clients */
#define KEEL_SANDBOX_KEYS  0x2u /* token, store, engine, admin API, mirror */
#define KEEL_SANDBOX_KEELD (KEEL_SANDBOX_NET | KEEL_SANDBOX_KEYS) /* one process */

/* Installs the filter for |roles| on every thread of the process (and on
 * threads started later). Irrevocable. Returns 0, or -1 after logging why. */
__attribute__((warn_unused_result)) int keel_sandbox_apply(unsigned roles,
							   enum keel_sandbox_mode mode);

/* "kill", "log" or "off". */
const char *keel_sandbox_mode_name(enum keel_sandbox_mode mode);

#endif
