/*
 * A bump allocator for protobuf-c messages unpacked together and dropped together (common/pb.h,
 * pb_arena_t): the entries of a PushTasks reply. protobuf-c's unpack mallocs the message, each
 * repeated field's array, each sub-message and each string or bytes field, and free_unpacked walks
 * the message again to free them one by one: ~5 allocations per entry and a descriptor walk on
 * the way out, on the thread that applies a batch's replies (docs/PERFORMANCE.md, "1:n actor
 * calls"). Here they come from a few blocks, the first sized from the packed bytes, freed at once.
 */
#include "common/pb.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>

struct pb_arena_block {
  struct pb_arena_block *next;
  max_align_t data[]; /* the block's bytes follow */
};

enum { PB_ARENA_MIN = 4096, PB_ARENA_ALIGN = 16 };

static void *arena_alloc(void *data, size_t size)
{
  pb_arena_t *a = data;
  size = ((size ? size : 1) + PB_ARENA_ALIGN - 1) & ~(size_t)(PB_ARENA_ALIGN - 1); /* never NULL */
  if (size > a->left) {
    size_t cap = size > a->next_size ? size : a->next_size;
    struct pb_arena_block *b = xmalloc(sizeof(*b) + cap);
    b->next = a->blocks;
    a->blocks = b;
    a->cur = (char *)b->data;
    a->left = cap;
    a->next_size = 2 * cap;
  }
  void *p = a->cur;
  a->cur += size;
  a->left -= size;
  return p;
}

static void arena_free(void *data, void *p)
{
  (void)data, (void)p; /* everything goes at once, in pb_arena_release */
}

void pb_arena_init(pb_arena_t *a, size_t hint)
{
  a->alloc.alloc = arena_alloc;
  a->alloc.free = arena_free;
  a->alloc.allocator_data = a;
  a->blocks = NULL;
  a->cur = NULL;
  a->left = 0;
  a->next_size = hint > PB_ARENA_MIN ? hint : PB_ARENA_MIN;
}

void pb_arena_release(pb_arena_t *a)
{
  if (!a)
    return;
  while (a->blocks) {
    struct pb_arena_block *b = a->blocks;
    a->blocks = b->next;
    free(b);
  }
  a->cur = NULL;
  a->left = 0;
}
