/* A backup file's header (appliance/backup): any input is refused as
 * malformed or yields lengths that fit inside it. The rest of the file is
 * authenticated (AES-256-GCM) before anything parses it. */
#include <stdlib.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keel_backup_info info;

	if (keel_backup_peek(data, size, &info) == 0 &&
	    (info.format != KEEL_BACKUP_FORMAT || size < 80)) {
		abort(); /* accepted what the format excludes */
	}
	return 0;
}
