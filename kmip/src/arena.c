/*
 * A bump allocator for decoded messages: one allocation per message, wiped
 * on cleanup because messages carry key material.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/kmip.h"

struct kmip_arena_block {
	struct kmip_arena_block *next;
	size_t cap;
	size_t used; /* high-water mark, recorded when a newer block takes over */
	alignas(max_align_t) uint8_t data[];
};

#define ALIGN	  alignof(max_align_t)
#define MIN_BLOCK 4096

void kmip_arena_init(struct kmip_arena *a, void *storage, size_t storage_len)
{
	memset(a, 0, sizeof(*a));
	a->storage = storage;
	a->storage_len = storage != NULL ? storage_len : 0;
	a->base = a->storage;
	a->cap = a->storage_len;
}

/*
 * Wipes what was handed out (the bytes past each block's high-water mark were
 * never written) and frees the heap blocks.
 */
void kmip_arena_cleanup(struct kmip_arena *a)
{
	struct kmip_arena_block *b = a->blocks;

	if (a->storage != NULL) {
		explicit_bzero(a->storage, b == NULL ? a->used : a->storage_used);
	}
	if (b != NULL) {
		b->used = a->used;
	}
	while (b != NULL) {
		struct kmip_arena_block *next = b->next;

		explicit_bzero(b->data, b->used);
		free(b);
		b = next;
	}
	a->blocks = NULL;
	a->base = a->storage;
	a->cap = a->storage_len;
	a->used = 0;
	a->storage_used = 0;
}

/* Starts a heap block big enough for |n| bytes, at least double the last one. */
static int grow(struct kmip_arena *a, size_t n)
{
	size_t cap = a->cap * 2 > MIN_BLOCK ? a->cap * 2 : MIN_BLOCK;
	struct kmip_arena_block *b;

	if (cap < n) {
		cap = n;
	}
	if (cap > SIZE_MAX - sizeof(*b)) {
		return KMIP_E_NOMEM;
	}
	if ((b = malloc(sizeof(*b) + cap)) == NULL) {
		return KMIP_E_NOMEM;
	}
	if (a->blocks == NULL) {
		a->storage_used = a->used;
	} else {
		a->blocks->used = a->used;
	}
	b->cap = cap;
	b->used = 0;
	b->next = a->blocks;
	a->blocks = b;
	a->base = b->data;
	a->cap = cap;
	a->used = 0;
	a->num_allocs++;
	return 0;
}

void *kmip_arena_alloc(struct kmip_arena *a, size_t n)
{
	uintptr_t cur = (uintptr_t)a->base + a->used;
	size_t start = (size_t)(((cur + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1)) - (uintptr_t)a->base);
	void *p;

	if (n > SIZE_MAX - ALIGN) {
		return NULL;
	}
	if (a->base == NULL || start > a->cap || n > a->cap - start) {
		if (grow(a, n) != 0) {
			return NULL;
		}
		start = 0;
	}
	p = a->base + start;
	a->used = start + n;
	return p;
}

int kmip_arena_reserve(struct kmip_arena *a, size_t n)
{
	uintptr_t cur = (uintptr_t)a->base + a->used;
	size_t start = (size_t)(((cur + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1)) - (uintptr_t)a->base);

	if (a->base != NULL && start <= a->cap && n <= a->cap - start) {
		return 0;
	}
	return grow(a, n);
}

char *kmip_arena_strndup(struct kmip_arena *a, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX || (p = kmip_arena_alloc(a, len + 1)) == NULL) {
		return NULL;
	}
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
