/*
 * libFuzzer harness: the local frame protocol the raylet and the store read from their Unix
 * sockets (common/frame.c's incremental reader, then a LocalMessage decode, as raylet_local.c and
 * store_server.c do). The first input byte sets how the rest is cut into reads (1..256 bytes),
 * so frames split across reads are covered; every decoded message that passes the generic request
 * rules (common/rpc_valid.h) is packed again and decoded again, which must give the same bytes.
 */
#include "common/frame.h"
#include "common/pb.h"
#include "common/rpc_valid.h"
#include "proto/local.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_one_frame(const uint8_t *p, size_t len)
{
  Rayc__LocalMessage *m = rayc__local_message__unpack(NULL, len, p);
  char why[300];
  if (!m || rpc_valid_check(&m->base, NULL, why, sizeof(why)) != 0) {
    pb_free(m);
    return;
  }
  size_t n = rayc__local_message__get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (rayc__local_message__pack(m, buf) != n)
    abort();
  Rayc__LocalMessage *again = rayc__local_message__unpack(NULL, n, buf);
  if (!again)
    abort(); /* what we packed must decode */
  size_t n2 = rayc__local_message__get_packed_size(again);
  uint8_t *buf2 = malloc(n2 ? n2 : 1);
  if (rayc__local_message__pack(again, buf2) != n2 || n2 != n || memcmp(buf, buf2, n) != 0)
    abort(); /* packing is deterministic */
  free(buf2);
  free(buf);
  rayc__local_message__free_unpacked(again, NULL);
  rayc__local_message__free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  size_t chunk = (size_t)data[0] + 1;
  data++, size--;
  frame_reader_t rd;
  frame_reader_init(&rd);
  frame_reader_set_max(&rd, 1 << 20);
  for (size_t off = 0; off < size;) {
    size_t n = size - off < chunk ? size - off : chunk;
    uint8_t *space = frame_reader_space(&rd, n);
    memcpy(space, data + off, n);
    frame_reader_commit(&rd, n);
    off += n;
    const uint8_t *p;
    size_t len;
    int rc;
    while ((rc = frame_reader_next(&rd, &p, &len)) == 1)
      fuzz_one_frame(p, len);
    if (rc < 0)
      break; /* the daemon drops the connection here */
  }
  frame_reader_release(&rd);
  return 0;
}
