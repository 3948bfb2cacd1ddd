/*
 * Where a TTLV message ends. The server decides this from the 8-byte header
 * alone (KMIP 1.4 §9.1.1: tag, type, length), before buffering the body, so
 * that a client cannot make us hold more than max_message_size bytes. What is
 * inside the frame is the engine's business.
 */
#include "keel/server.h"

enum keel_frame_verdict keel_frame_check(const uint8_t header[KEEL_TTLV_HEADER_LEN],
					 uint32_t max_message_size, size_t *out_frame_len)
{
	uint32_t body_len = (uint32_t)header[4] << 24 | (uint32_t)header[5] << 16 |
			    (uint32_t)header[6] << 8 | (uint32_t)header[7];

	/* KMIP tags are 0x42xxxx; 0x54xxxx is the extension range (§9.1.3.1).
	 * Anything else is not TTLV at all (a TLS-less probe, HTTP, noise). */
	if (header[0] != 0x42 && header[0] != 0x54) {
		return KEEL_FRAME_BAD_TAG;
	}
	if (header[3] != 0x01) {
		return KEEL_FRAME_NOT_STRUCTURE;
	}
	/* Compared as body <= max - header so that nothing can overflow. */
	if (max_message_size < KEEL_TTLV_HEADER_LEN ||
	    body_len > max_message_size - KEEL_TTLV_HEADER_LEN) {
		return KEEL_FRAME_TOO_LARGE;
	}
	*out_frame_len = (size_t)body_len + KEEL_TTLV_HEADER_LEN;
	return KEEL_FRAME_OK;
}
