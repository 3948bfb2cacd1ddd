/* keelctl_api_follow: a background job's progress, polled until it ends. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "keelctl.h"

#define POLL_MS	  500
#define BAR_WIDTH 40

/* An unknown total (0) while running is the job still counting: an empty bar. */
static void draw_bar(long long done, long long total, bool running)
{
	int filled = total > 0 ? (int)(done * BAR_WIDTH / total) : running ? 0 : BAR_WIDTH;
	int percent = total > 0 ? (int)(done * 100 / total) : running ? 0 : 100;
	char bar[BAR_WIDTH + 1];

	filled = filled > BAR_WIDTH ? BAR_WIDTH : filled < 0 ? 0 : filled;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %lld/%lld", bar, percent, done, total);
}

int keelctl_api_follow(const struct keelctl_api *api, const char *path,
		       bool (*progress)(const json_t *answer, long long *done, long long *total),
		       bool count_lines, json_t **out)
{
	const struct timespec pause = {0, POLL_MS * 1000000L};
	bool tty = isatty(STDERR_FILENO) && !api->json, running;
	long long done = 0, total = 0, shown = -1;
	int r;

	for (;;) {
		if ((r = keelctl_api_call(api, "GET", path, NULL, out)) != 0) {
			return r;
		}
		running = progress(*out, &done, &total);
		if (tty) {
			draw_bar(done, total, running);
		} else if (count_lines && !api->json && done != shown) {
			fprintf(stderr, "%lld/%lld\n", done, total);
			shown = done;
		}
		if (!running) {
			break;
		}
		json_decref(*out);
		*out = NULL;
		nanosleep(&pause, NULL);
	}
	if (tty) {
		fputc('\n', stderr);
	}
	return 0;
}
