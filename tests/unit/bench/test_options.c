/* keel-bench's command line: defaults, every option, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/tls1.h>

#include "options.h"

#define BASE	"keel-bench", "--target", "127.0.0.1:5696", "--ca", "ca", "--cert", "c", "--key", "k"
#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char msg[256];

static int parse(int argc, char *const argv[], struct kbench_opts *o)
{
	msg[0] = '\0';
	return kbench_opts_parse(argc, argv, o, msg, sizeof(msg));
}

static void test_defaults(void **state)
{
	char *argv[] = {BASE, "get"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_int_equal(o.scenario, KBENCH_GET);
	assert_string_equal(o.host, "127.0.0.1");
	assert_string_equal(o.port, "5696");
	assert_int_equal(o.concurrency, 1);
	assert_true(o.duration == 10.0);
	assert_int_equal(o.count, 0);
	assert_true(o.resumption);
	assert_false(o.json);
	assert_null(o.plot);
	assert_int_equal(o.tls_version, 0);
	assert_int_equal(o.kmip_major, 1);
	assert_int_equal(o.kmip_minor, 1);
}

static void test_every_option(void **state)
{
	char *argv[] = {"keel-bench",
			"mixed",
			"--target",
			"[::1]:15696",
			"--ca",
			"ca",
			"--cert",
			"c",
			"--key",
			"k",
			"--concurrency",
			"32",
			"--count",
			"1000",
			"--json",
			"--tls",
			"1.3",
			"--no-resumption",
			"--kmip-version",
			"2.1",
			"--ratio",
			"3:2",
			"--objects",
			"77",
			"--plot",
			"/tmp/run"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_int_equal(o.scenario, KBENCH_MIXED);
	assert_string_equal(o.host, "::1");
	assert_string_equal(o.port, "15696");
	assert_int_equal(o.concurrency, 32);
	assert_int_equal(o.count, 1000);
	assert_true(o.duration == 0);
	assert_true(o.json);
	assert_int_equal(o.tls_version, TLS1_3_VERSION);
	assert_false(o.resumption);
	assert_int_equal(o.kmip_major, 2);
	assert_int_equal(o.kmip_minor, 1);
	assert_int_equal(o.ratio_get, 3);
	assert_int_equal(o.ratio_create, 2);
	assert_int_equal(o.objects, 77);
	assert_string_equal(o.plot, "/tmp/run");
}

static void test_boot_storm(void **state)
{
	char *argv[] = {BASE, "boot-storm", "--hosts", "2000", "--keys", "4"};
	char *bad[] = {BASE, "boot-storm", "--count", "5"};
	char *misplaced[] = {BASE, "get", "--hosts", "5"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_int_equal(o.concurrency, 2000);
	assert_int_equal(o.count, 2000);
	assert_int_equal(o.keys, 4);
	assert_int_equal(parse(ARGC(bad), bad, &o), KBENCH_E_USAGE);
	assert_int_equal(parse(ARGC(misplaced), misplaced, &o), KBENCH_E_USAGE);
}

static void test_help(void **state)
{
	char *argv[] = {"keel-bench", "--bogus", "--help"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_true(o.help);
	assert_non_null(strstr(kbench_usage, "vcenter-task"));
}

/* Each bad command line is refused with a message naming what is wrong. */
static void expect_usage(int argc, char *const argv[], const char *needle)
{
	struct kbench_opts o;

	assert_int_equal(parse(argc, argv, &o), KBENCH_E_USAGE);
	assert_non_null(strstr(msg, needle));
}

static void test_errors(void **state)
{
	char *no_scenario[] = {BASE};
	char *unknown[] = {BASE, "put"};
	char *two[] = {BASE, "get", "create"};
	char *option[] = {BASE, "get", "--fast"};
	char *missing_value[] = {BASE, "get", "--count"};
	char *both[] = {BASE, "get", "--count", "5", "--duration", "1"};
	char *zero[] = {BASE, "get", "--concurrency", "0"};
	char *negative[] = {BASE, "get", "--count", "-5"};
	char *trailing[] = {BASE, "get", "--count", "5x"};
	char *tls[] = {BASE, "get", "--tls", "1.1"};
	char *version[] = {BASE, "get", "--kmip-version", "3.0"};
	char *ratio[] = {BASE, "mixed", "--ratio", "0:0"};
	char *duration[] = {BASE, "get", "--duration", "-1"};
	char *port[] = {BASE, "get", "--target", "host:99999"};
	char *no_port[] = {"keel-bench", "get",	   "--target", "host",	"--ca",
			   "a",		 "--cert", "c",	       "--key", "k"};
	char *no_key[] = {"keel-bench", "get", "--target", "h:1", "--ca", "a", "--cert", "c"};
	char *plot_quote[] = {BASE, "get", "--plot", "it's"};
	char *plot_empty[] = {BASE, "get", "--plot", ""};

	(void)state;
	expect_usage(ARGC(no_scenario), no_scenario, "no scenario");
	expect_usage(ARGC(unknown), unknown, "unknown scenario 'put'");
	expect_usage(ARGC(two), two, "unexpected argument 'create'");
	expect_usage(ARGC(option), option, "unknown option '--fast'");
	expect_usage(ARGC(missing_value), missing_value, "--count needs a value");
	expect_usage(ARGC(both), both, "exclude each other");
	expect_usage(ARGC(zero), zero, "--concurrency");
	expect_usage(ARGC(negative), negative, "'-5' for --count");
	expect_usage(ARGC(trailing), trailing, "--count");
	expect_usage(ARGC(tls), tls, "--tls");
	expect_usage(ARGC(version), version, "--kmip-version");
	expect_usage(ARGC(ratio), ratio, "--ratio");
	expect_usage(ARGC(duration), duration, "--duration");
	expect_usage(ARGC(port), port, "--target");
	expect_usage(ARGC(no_port), no_port, "--target");
	expect_usage(ARGC(no_key), no_key, "required");
	expect_usage(ARGC(plot_quote), plot_quote, "--plot");
	expect_usage(ARGC(plot_empty), plot_empty, "--plot");
}

static void test_idle(void **state)
{
	char *argv[] = {BASE, "idle", "--concurrency", "300", "--duration", "2"};
	char *counted[] = {BASE, "idle", "--count", "5"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_int_equal(o.scenario, KBENCH_IDLE);
	assert_int_equal(o.count, 300); /* one Discover Versions per connection */
	assert_true(o.duration == 2.0); /* then held open this long */
	expect_usage(ARGC(counted), counted, "idle takes");
}

static void test_names(void **state)
{
	char *argv[] = {BASE, "locate", "--objects", "1000000", "--names", "keel-bench-7-42"};
	char *empty[] = {BASE, "locate", "--names", ""};
	char *misplaced[] = {BASE, "get", "--names", "p"};
	char *too_long[] = {BASE, "locate", "--names",
			    "0123456789012345678901234567890123456789012345678901234567890123"};
	struct kbench_opts o;

	(void)state;
	assert_int_equal(parse(ARGC(argv), argv, &o), 0);
	assert_int_equal(o.objects, 1000000);
	assert_string_equal(o.names, "keel-bench-7-42");
	assert_int_equal(parse(ARGC(argv) - 2, argv, &o), 0);
	assert_null(o.names); /* objects are made first */
	expect_usage(ARGC(empty), empty, "--names");
	expect_usage(ARGC(misplaced), misplaced, "--names is for locate");
	expect_usage(ARGC(too_long), too_long, "--names"); /* 64 characters: no room for "-N" */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),   cmocka_unit_test(test_every_option),
	    cmocka_unit_test(test_boot_storm), cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_help),       cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
