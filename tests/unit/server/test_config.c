/* keeld.conf: a good file is read as written; each bad setting is reported
 * with its line and a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <ftw.h>

#include "config.h"

static char dir[] = "/tmp/keel-config-test-XXXXXX";

/* Lines 1-2 of every bad case: a minimal valid file. The case's text is line 3. */
#define BASE                                                                                       \
	"tls: { certificate = \"server.crt\"; private_key = \"server.key\"; };\n"                  \
	"clients: { certificates_dir = \"clients\"; };\n"

static void touch(const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static int setup(void **state)
{
	char path[256];

	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	touch("server.crt");
	touch("server.key");
	touch("ca.pem");
	touch("user.pin");
	snprintf(path, sizeof(path), "%s/clients", dir);
	return mkdir(path, 0700);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	return nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_good_file(void **state)
{
	static const char text[] =
	    "listen = [ \"127.0.0.1:5696\", \"[::1]:15696\" ];\n"
	    "log_level = \"debug\";\n"
	    "worker_threads = 8;\n"
	    "tls: { certificate = \"server.crt\"; private_key = \"server.key\";\n"
	    "       session_lifetime = 0; };\n"
	    "clients: { certificates_dir = \"clients\"; ca_file = \"ca.pem\"; };\n"
	    "limits: { max_connections = 100; max_connections_per_client = 10;\n"
	    "  max_message_size = 65536; handshake_timeout_ms = 1;\n"
	    "  idle_timeout_ms = 2; frame_timeout_ms = 3; drain_timeout_ms = 4;\n"
	    "  max_batch_items = 3; max_locate_items = 50; };\n"
	    "hsm: { module = \"softhsm2\"; token_label = \"keel\"; pin_file = \"user.pin\";\n"
	    "  pool_size = 2; wrap = \"kwp\"; timeout_ms = 250; };\n"
	    "seccomp = \"log\";\n"
	    "store: { path = \"keel.db\"; };\n"
	    "admin: { listen = [ \"127.0.0.1:18443\", \"[::]:8443\" ]; socket = \"a.sock\"; };\n"
	    "mirror: { endpoint = \"https://eu-de.kms.cloud.ibm.com\";\n"
	    "  iam_token_url = \"https://iam.cloud.ibm.com/oidc/token\";\n"
	    "  instance_id = \"12e8c9c2-a162-472d-b7d6-8b9a86b815a6\"; api_key_file = "
	    "\"user.pin\";\n"
	    "  ca_bundle = \"ca.pem\"; poll_interval = 60; };\n"
	    "privsep: { user = \"keel-net\"; };\n";
	struct keel_config *cfg = NULL;
	struct keel_config_error err;
	const struct sockaddr_in6 *s6;
	char path[256];

	assert_int_equal(keel_config_load_string(text, "good.conf", dir, &cfg, &err), 0);
	assert_int_equal(cfg->num_listen, 2);
	assert_int_equal(cfg->listen[0].addr.ss_family, AF_INET);
	assert_int_equal(cfg->listen[1].addr.ss_family, AF_INET6);
	s6 = (const struct sockaddr_in6 *)&cfg->listen[1].addr;
	assert_int_equal(ntohs(s6->sin6_port), 15696);
	assert_int_equal(cfg->log_level, KEEL_LOG_DEBUG);
	assert_int_equal(cfg->worker_threads, 8);
	assert_string_equal(cfg->privsep_user, "keel-net");
	snprintf(path, sizeof(path), "%s/server.crt", dir);
	assert_string_equal(cfg->tls_certificate, path);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	assert_string_equal(cfg->clients_ca_file, path);
	assert_int_equal(cfg->tls_session_lifetime_s, 0);
	assert_int_equal(cfg->max_connections, 100);
	assert_int_equal(cfg->max_connections_per_client, 10);
	assert_int_equal(cfg->max_message_size, 65536);
	assert_int_equal(cfg->handshake_timeout_ms, 1);
	assert_int_equal(cfg->idle_timeout_ms, 2);
	assert_int_equal(cfg->frame_timeout_ms, 3);
	assert_int_equal(cfg->drain_timeout_ms, 4);
	assert_int_equal(cfg->max_batch_items, 3);
	assert_int_equal(cfg->max_locate_items, 50);
	assert_string_equal(cfg->hsm_module, "softhsm2");
	assert_string_equal(cfg->hsm_token_label, "keel");
	snprintf(path, sizeof(path), "%s/user.pin", dir);
	assert_string_equal(cfg->hsm_pin_file, path);
	assert_int_equal(cfg->hsm_pool_size, 2);
	assert_int_equal(cfg->hsm_wrap, KEEL_CONFIG_WRAP_KWP);
	assert_int_equal(cfg->hsm_timeout_ms, 250);
	assert_int_equal(cfg->seccomp, KEEL_CONFIG_SECCOMP_LOG);
	snprintf(path, sizeof(path), "%s/keel.db", dir);
	assert_string_equal(cfg->store_path, path);
	assert_int_equal(cfg->num_admin_listen, 2);
	assert_int_equal(cfg->admin_listen[1].addr.ss_family, AF_INET6);
	snprintf(path, sizeof(path), "%s/a.sock", dir);
	assert_string_equal(cfg->admin_socket, path);
	assert_string_equal(cfg->mirror_endpoint, "https://eu-de.kms.cloud.ibm.com");
	assert_string_equal(cfg->mirror_iam_url, "https://iam.cloud.ibm.com/oidc/token");
	assert_string_equal(cfg->mirror_instance_id, "12e8c9c2-a162-472d-b7d6-8b9a86b815a6");
	snprintf(path, sizeof(path), "%s/user.pin", dir);
	assert_string_equal(cfg->mirror_api_key_file, path);
	assert_int_equal(cfg->mirror_poll_interval_s, 60);
	keel_config_free(cfg);
}

static uint32_t default_network_threads(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	assert_true(cpus >= 1);
	/* (worker_threads' default, 16, caps no lower) */
	return cpus > KEEL_NETWORK_THREADS_AUTO_MAX ? KEEL_NETWORK_THREADS_AUTO_MAX
						    : (uint32_t)cpus;
}

static void test_defaults(void **state)
{
	struct keel_config *cfg = NULL;
	struct keel_config_error err;
	const struct sockaddr_in *s4;

	assert_int_equal(keel_config_load_string(BASE, "min.conf", dir, &cfg, &err), 0);
	assert_int_equal(cfg->num_listen, 1);
	s4 = (const struct sockaddr_in *)&cfg->listen[0].addr;
	assert_int_equal(ntohs(s4->sin_port), 5696);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(cfg->max_message_size, 1u << 20);
	assert_int_equal(cfg->log_level, KEEL_LOG_INFO);
	assert_null(cfg->clients_ca_file);
	assert_null(cfg->privsep_user);
	assert_int_equal(cfg->max_batch_items, 64);
	assert_int_equal(cfg->num_admin_listen, 1);
	assert_string_equal(cfg->admin_listen[0].text, KEEL_ADMIN_LISTEN_DEFAULT);
	assert_string_equal(cfg->admin_socket, KEEL_ADMIN_SOCKET_DEFAULT);
	assert_int_equal(cfg->max_locate_items, 1000);
	assert_int_equal(cfg->hsm_timeout_ms, 0);
#ifndef KEEL_SANITIZE_BUILD
	assert_int_equal(cfg->seccomp, KEEL_CONFIG_SECCOMP_KILL); /* as in production */
#endif
	/* One identity may hold every connection: vSAN hosts share vCenter's certificate. */
	assert_int_equal(cfg->max_connections_per_client, cfg->max_connections);
	keel_config_free(cfg);
	assert_int_equal(keel_config_load_string(BASE "limits: { max_connections = 10; };",
						 "small.conf", dir, &cfg, &err),
			 0);
	assert_int_equal(cfg->max_connections_per_client, 10);
	keel_config_free(cfg);
	/* network_threads: the online CPUs, within both caps. */
	assert_int_equal(
	    keel_config_load_string(BASE "worker_threads = 1;", "one.conf", dir, &cfg, &err), 0);
	assert_int_equal(cfg->network_threads, 1);
	keel_config_free(cfg);
	assert_int_equal(keel_config_load_string(BASE, "min.conf", dir, &cfg, &err), 0);
	assert_int_equal(cfg->network_threads, default_network_threads());
	keel_config_free(cfg);
	assert_int_equal(keel_config_load_string(BASE "worker_threads = 8; network_threads = 8;",
						 "eight.conf", dir, &cfg, &err),
			 0);
	assert_int_equal(cfg->network_threads, 8);
	keel_config_free(cfg);
	assert_int_equal(keel_config_load_string(BASE, "min.conf", dir, &cfg, &err), 0);
	/* No hsm or store section: keeld refuses to start, the config does not. */
	assert_null(cfg->hsm_module);
	assert_null(cfg->store_path);
	assert_null(cfg->mirror_instance_id); /* no mirror unless configured */
	assert_int_equal(cfg->mirror_poll_interval_s, 300);
	keel_config_free(cfg);
}

/* The example shipped with keeld must parse (its paths aside). */
static void test_example_file_parses(void **state)
{
	struct keel_config *cfg = NULL;
	struct keel_config_error err;

	assert_int_equal(keel_config_load(KEEL_EXAMPLE_CONF, &cfg, &err), -1);
	/* The first complaint is the absent /etc/keel/tls/server.crt, not syntax. */
	assert_non_null(strstr(err.reason, "tls.certificate"));
	assert_true(err.line > 0);
}

struct bad {
	const char *text;
	int line;
	const char *reason;
};

static const struct bad bad_cases[] = {
    {BASE "limits: { max_connections = 0; };", 3, "out of range"},
    {BASE "limits: {\n  max_message_size = \"big\"; };", 4, "must be an integer"},
    {BASE "limits: { max_message_size = 100000000; };", 3, "out of range"},
    {BASE "limits: { handshake_timeout_ms = -5; };", 3, "out of range"},
    {BASE "worker_threads = 1000;", 3, "out of range"},
    {BASE "listen = [ \"localhost:5696\" ];", 3, "listen[0]"},
    {BASE "listen = [ \"127.0.0.1:70000\" ];", 3, "listen[0]"},
    {BASE "listen = [ \"::1:5696\" ];", 3, "listen[0]"},
    {BASE "listen = [ ];", 3, "1 to"},
    {BASE "listen = \"127.0.0.1:5696\";", 3, "list"},
    {BASE "log_level = \"loud\";", 3, "log_level"},
    {BASE "admin: { listen = [ \"localhost:8443\" ]; };", 3, "admin.listen[0]"},
    {BASE "admin: { socket = \"clients\"; };", 3, "exists and is not a socket"},
    {BASE "admin: { socket = \"nodir/a.sock\"; };", 3, "does not exist"},
    {BASE "mirror: { instance_id = \"i\"; };", 3, "mirror needs instance_id and api_key_file"},
    {BASE "mirror: { api_key_file = \"user.pin\"; };", 3, "mirror needs instance_id"},
    {BASE "mirror: { instance_id = \"i\"; api_key_file = \"no.key\"; };", 3, "no.key"},
    {BASE "mirror: { instance_id = \"i\"; api_key_file = \"user.pin\";\n"
	  " endpoint = \"http://kms.example\"; };",
     4, "mirror.endpoint must be an https:// URL"},
    {BASE "mirror: { instance_id = \"i\"; api_key_file = \"user.pin\";\n\n"
	  " iam_token_url = \"ftp://iam\"; };",
     5, "mirror.iam_token_url must be an https:// URL"},
    {BASE "mirror: { poll_interval = 1; };", 3, "mirror.poll_interval = 1 is out of range"},
    {BASE "bogus = 1;", 3, "unknown setting bogus"},
    {BASE "limits: { max_conections = 1; };", 3, "unknown setting limits.max_conections"},
    {BASE "hsm2: { module = \"x\"; };", 3, "unknown section hsm2"},
    {BASE "hsm: { module = \"x\"; };", 3, "hsm needs module, token_label and pin_file"},
    {BASE "hsm: {\n module = \"x\"; token_label = \"t\";\n pin_file = \"no.pin\"; };", 5, "no.pin"},
    {BASE "hsm: {\n module = \"\"; };", 4, "hsm.module must have 1 to"},
    {BASE "hsm: { token_label = \"0123456789012345678901234567890123\"; };", 3,
     "hsm.token_label must have 1 to 32"},
    {BASE "hsm: { token_label = 5; };", 3, "hsm.token_label must be a string"},
    {BASE "hsm: {\n\n pool_size = 0; };", 5, "hsm.pool_size = 0 is out of range"},
    {BASE "hsm: { wrap = \"cbc\"; };", 3, "hsm.wrap must be \"gcm\" or \"kwp\""},
    {BASE "seccomp = \"strict\";", 3, "seccomp must be \"kill\", \"log\" or \"off\""},
    {BASE "seccomp = 1;", 3, "seccomp must be"},
    {BASE "hsm: { timeout_ms = 600001; };", 3, "hsm.timeout_ms = 600001 is out of range"},
    {BASE "hsm: { slot = 1; };", 3, "unknown setting hsm.slot"},
    {BASE "store: { };", 3, "store needs path"},
    {BASE "store: { path = \"nodir/keel.db\"; };", 3, "directory"},
    {BASE "store: { path = \"clients\"; };", 3, "not a file"},
    {BASE "limits: { max_batch_items = 0; };", 3, "limits.max_batch_items = 0 is out of range"},
    {BASE "limits: { max_locate_items = 2000000; };", 3, "out of range"},
    {BASE "limits: {\n max_connections = 10;\n max_connections_per_client = 20; };", 5, "exceeds"},
    {BASE "worker_threads = ;", 3, "syntax error"},
    {BASE "network_threads = 0;", 3, "network_threads = 0 is out of range"},
    {BASE "network_threads = 65;", 3, "out of range"},
    /* Each network loop owns at least one of the key process's channels. */
    {BASE "worker_threads = 2;\n\nnetwork_threads = 3;", 5,
     "network_threads = 3 exceeds worker_threads (2)"},
    /* Privilege separation is how keeld runs: no switch. */
    {BASE "privsep: { enabled = true; };", 3, "unknown setting privsep.enabled"},
    {BASE "tls: { };", 3, "duplicate setting"},
    {"clients: { certificates_dir = \"clients\"; };\n"
     "tls: { certificate = \"server.crt\"; private_key = \"server.key\";\n"
     " session_lifetime = \"long\"; };",
     3, "must be an integer"},
    {"tls: { certificate = \"missing.crt\"; private_key = \"server.key\"; };", 1, "missing.crt"},
    {"tls: {\n certificate = \"server.crt\"; private_key = \"server.key\"; };\n"
     "clients: { certificates_dir = \"server.crt\"; };",
     3, "not a directory"},
    {"tls: {\n certificate = \"clients\"; private_key = \"server.key\"; };", 2, "not a file"},
    {"clients: { certificates_dir = \"clients\"; };", 0, "tls.certificate"},
    {"tls: { certificate = \"server.crt\"; private_key = \"\"; };", 1, "empty"},
};

static void test_bad_settings_report_their_line(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad *b = &bad_cases[i];
		struct keel_config *cfg = NULL;
		struct keel_config_error err;

		print_message("case %zu: %s\n", i, b->reason);
		assert_int_equal(keel_config_load_string(b->text, "bad.conf", dir, &cfg, &err), -1);
		assert_null(cfg);
		assert_string_equal(err.file, "bad.conf");
		assert_int_equal(err.line, b->line);
		if (strstr(err.reason, b->reason) == NULL) {
			fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, err.reason, b->reason);
		}
	}
}

/* The file name and line come from the file itself, not from the caller. */
static void test_file_error_names_file_and_line(void **state)
{
	struct keel_config *cfg = NULL;
	struct keel_config_error err;
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/keeld.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(BASE "\n\nlimits: { idle_timeout_ms = 0; };\n", f);
	fclose(f);
	assert_int_equal(keel_config_load(path, &cfg, &err), -1);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 5);
	assert_non_null(strstr(err.reason, "limits.idle_timeout_ms"));
}

static void test_missing_file(void **state)
{
	struct keel_config *cfg = NULL;
	struct keel_config_error err;

	assert_int_equal(keel_config_load("/nonexistent/keeld.conf", &cfg, &err), -1);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.file, "/nonexistent/keeld.conf");
}

static void test_listen_addr_parse(void **state)
{
	struct keel_listen_addr a;

	assert_int_equal(keel_listen_addr_parse("0.0.0.0:0", &a), 0);
	assert_int_equal(keel_listen_addr_parse("[::]:5696", &a), 0);
	assert_int_equal(a.addr.ss_family, AF_INET6);
	assert_int_equal(keel_listen_addr_parse("[::1]", &a), -1);
	assert_int_equal(keel_listen_addr_parse("[::1]:", &a), -1);
	assert_int_equal(keel_listen_addr_parse("1.2.3.4:56x", &a), -1);
	assert_int_equal(keel_listen_addr_parse(":5696", &a), -1);
	assert_int_equal(keel_listen_addr_parse("1.2.3.4:-1", &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_example_file_parses),
	    cmocka_unit_test(test_bad_settings_report_their_line),
	    cmocka_unit_test(test_file_error_names_file_and_line),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_listen_addr_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
