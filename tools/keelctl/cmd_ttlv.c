/*
 * keelctl ttlv convert: reads a KMIP message as TTLV (hex or binary), XML or
 * JSON and writes it in another of those forms, or as indented text, so an
 * operator can read a capture.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"
#include "keelctl.h"

#define MAX_INPUT ((size_t)16 * 1024 * 1024)

/* Input is held in one buffer that is wiped on exit: captures can hold keys. */
struct input {
	uint8_t *data;
	size_t len;
};

static int read_all(FILE *f, struct input *in)
{
	size_t cap = (size_t)64 * 1024;

	in->len = 0;
	if ((in->data = malloc(cap)) == NULL) {
		return -1;
	}
	for (;;) {
		size_t n = fread(in->data + in->len, 1, cap - in->len, f);

		in->len += n;
		if (n == 0) {
			return ferror(f) ? -1 : 0;
		}
		if (in->len == cap) {
			uint8_t *bigger;

			if (cap >= MAX_INPUT || (bigger = malloc(cap * 2)) == NULL) {
				return -1;
			}
			memcpy(bigger, in->data, in->len);
			explicit_bzero(in->data, cap);
			free(in->data);
			in->data = bigger;
			cap *= 2;
		}
	}
}

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Decodes hex in place, skipping white space. Fails on anything else or an odd count. */
static int unhex_in_place(struct input *in)
{
	size_t out = 0;
	int hi = -1;

	for (size_t i = 0; i < in->len; i++) {
		int v = hex_digit(in->data[i]);

		if (v < 0) {
			if (is_space(in->data[i])) {
				continue;
			}
			return -1;
		}
		if (hi < 0) {
			hi = v;
		} else {
			in->data[out++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0) {
		return -1;
	}
	in->len = out;
	return 0;
}

enum format { FMT_GUESS, FMT_HEX, FMT_BIN, FMT_XML, FMT_JSON, FMT_TEXT };

static const char *const format_names[] = {
    [FMT_HEX] = "hex",	 [FMT_BIN] = "bin",   [FMT_XML] = "xml",
    [FMT_JSON] = "json", [FMT_TEXT] = "text",
};

static int parse_format(const char *s, enum format *out)
{
	for (int f = FMT_HEX; f <= FMT_TEXT; f++) {
		if (strcmp(s, format_names[f]) == 0) {
			*out = (enum format)f;
			return 0;
		}
	}
	return -1;
}

/* The first byte that is not white space tells the format; TTLV starts with 0x42 or 0x54. */
static enum format guess_format(const struct input *in)
{
	size_t i = 0;
	bool hex = true;

	while (i < in->len && is_space(in->data[i])) {
		i++;
	}
	if (i < in->len && in->data[i] == '<') {
		return FMT_XML;
	}
	if (i < in->len && (in->data[i] == '{' || in->data[i] == '[')) {
		return FMT_JSON;
	}
	for (size_t k = 0; k < in->len && hex; k++) {
		hex = hex_digit(in->data[k]) >= 0 || is_space(in->data[k]);
	}
	return hex ? FMT_HEX : FMT_BIN;
}

static int decode(struct input *in, enum format from, struct kmip_arena *arena,
		  struct kmip_node **out)
{
	static const struct kmip_limits limits = {.max_message_len = MAX_INPUT, .max_depth = 32};

	switch (from) {
	case FMT_HEX:
		if (unhex_in_place(in) != 0) {
			keelctl_err("input is not hex");
			return -1;
		}
		__attribute__((fallthrough));
	case FMT_BIN:
		return kmip_decode_tree(in->data, in->len, &limits, arena, out);
	case FMT_XML:
		return kmip_xml_decode((const char *)in->data, in->len, &limits, arena, out);
	case FMT_JSON:
		return kmip_json_decode((const char *)in->data, in->len, &limits, arena, out);
	default:
		return -1;
	}
}

static int write_ttlv(const struct kmip_node *root, bool hex, FILE *f)
{
	struct kmip_writer w;
	const uint8_t *msg;
	size_t len;
	int err;

	kmip_writer_init(&w, MAX_INPUT);
	kmip_encode_tree(&w, root);
	if ((err = kmip_writer_finish(&w, &msg, &len)) == 0) {
		for (size_t i = 0; i < len && hex; i++) {
			fprintf(f, "%02x", msg[i]);
		}
		if (hex) {
			fputc('\n', f);
		} else if (fwrite(msg, 1, len, f) != len) {
			err = -1;
		}
	}
	kmip_writer_cleanup(&w);
	return err;
}

static int write_text(const struct kmip_node *root, enum format to, FILE *f)
{
	struct kmip_text_buf buf;
	int err;

	kmip_text_buf_init(&buf, 64 * MAX_INPUT);
	if (to == FMT_XML) {
		err = kmip_xml_encode(&buf, root);
	} else if (to == FMT_JSON) {
		err = kmip_json_encode(&buf, root);
		kmip_text_append(&buf, "\n", 1); /* one line of JSON, ended like any other */
	} else {
		err = kmip_print(&buf, root);
	}
	if (err == 0 && fwrite(buf.data, 1, buf.len, f) != buf.len) {
		err = KMIP_E_STATE;
	}
	kmip_text_buf_cleanup(&buf);
	return err;
}

static int encode(const struct kmip_node *root, enum format to, FILE *f)
{
	if (to == FMT_HEX || to == FMT_BIN) {
		return write_ttlv(root, to == FMT_HEX, f);
	}
	return write_text(root, to, f);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keelctl ttlv convert [--from hex|bin|xml|json] [--to xml|json|hex|bin|text]"
		" [FILE]\n\n"
		"Reads one KMIP message from FILE (standard input when absent) and writes it to\n"
		"standard output. The input format is guessed when --from is absent; the output\n"
		"is indented text unless --to says otherwise.\n");
}

static int convert(FILE *in_file, enum format from, enum format to)
{
	struct input in = {0};
	struct kmip_arena arena;
	struct kmip_node *root = NULL;
	int err;
	int rc = 0;

	kmip_arena_init(&arena, NULL, 0);
	if (read_all(in_file, &in) != 0) {
		keelctl_err("cannot read input (larger than %zu bytes, or an I/O error)",
			    MAX_INPUT);
		rc = EX_NOINPUT;
		goto out;
	}
	if (from == FMT_GUESS) {
		from = guess_format(&in);
	}
	if ((err = decode(&in, from, &arena, &root)) != 0) {
		keelctl_err("input is not a valid %s KMIP message: %s", format_names[from],
			    err < 0 && err > -100 ? kmip_strerror(err) : "bad input");
		rc = EX_DATAERR;
		goto out;
	}
	if ((err = encode(root, to, stdout)) != 0) {
		keelctl_err("cannot write %s: %s", format_names[to], kmip_strerror(err));
		rc = err == KMIP_E_PLACEHOLDER ? EX_DATAERR : EX_IOERR;
	}
out:
	if (in.data != NULL) {
		explicit_bzero(in.data, in.len);
		free(in.data);
	}
	kmip_arena_cleanup(&arena);
	return rc;
}

static int ttlv_convert(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum format from = FMT_GUESS;
	enum format to = FMT_TEXT;
	FILE *in_file = stdin;
	int c;
	int rc;

	while ((c = getopt_long(argc, argv, "f:t:h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == 'f' && (parse_format(optarg, &from) != 0 || from == FMT_TEXT)) {
			keelctl_err("--from takes hex, bin, xml or json");
			return EX_USAGE;
		}
		if (c == 't' && parse_format(optarg, &to) != 0) {
			keelctl_err("--to takes xml, json, hex, bin or text");
			return EX_USAGE;
		}
		if (c == '?') {
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	if (optind < argc && (in_file = fopen(argv[optind], "rb")) == NULL) {
		keelctl_err("cannot open %s", argv[optind]);
		return EX_NOINPUT;
	}
	rc = convert(in_file, from, to);
	if (in_file != stdin) {
		fclose(in_file);
	}
	return rc;
}

int keelctl_ttlv(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "convert") == 0) {
		optind = 1;
		return ttlv_convert(argc - 1, argv + 1);
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return EX_USAGE;
}
