/*
 * Runs a fuzz harness over files named on the command line (or every file of
 * the directories named), without libFuzzer. This is how crash inputs kept in
 * tests/fuzz/regressions/ run as ordinary tests in every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)len + 1)) == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		if (f != NULL) {
			fclose(f);
		}
		return 1;
	}
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "cannot read %s\n", path);
		free(buf);
		fclose(f);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

static int run_path(const char *path, int *count)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int failed = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "cannot stat %s\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	if ((d = opendir(path)) == NULL) {
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[4096];

		if (e->d_name[0] == '.') {
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		failed |= run_path(sub, count);
	}
	closedir(d);
	return failed;
}

int main(int argc, char **argv)
{
	int failed = 0;
	int count = 0;

	for (int i = 1; i < argc; i++) {
		failed |= run_path(argv[i], &count);
	}
	printf("%d inputs ran without a crash\n", count);
	return failed;
}
