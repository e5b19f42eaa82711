/*
 * libFuzzer harness: the heartbeat datagram parser (common/hb_udp.c), which the GCS runs on every
 * datagram that reaches its UDP port and the raylet on every answer, and the raylet's unpacking of
 * a reply's view (hb_udp_view_unpack). Whatever arrives, decoding reads only the datagram's bytes
 * (the input is copied to a block of exactly its size, so ASan sees any read past it), and what it
 * accepts is a datagram that encodes back to the same bytes: with the token, the MAC it checked;
 * without one, the same body and view. A view that unpacks is a delta whose ids have their size.
 */
#include "common/hb_udp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "fuzz-token";

/* Unpacks the view of an accepted reply, if any, and checks what hb_udp_view_unpack promises. */
static void view_check(const hb_udp_msg_t *m)
{
  char why[200];
  Rayc__ClusterView *v = hb_udp_view_unpack(m, why, sizeof(why));
  if (!v)
    return;
  if (!v->delta)
    abort();
  for (size_t i = 0; i < v->n_nodes; i++)
    if (v->nodes[i]->node_id.len != ID_NODE_SIZE)
      abort();
  for (size_t i = 0; i < v->n_removed; i++)
    if (v->removed[i].len != ID_NODE_SIZE)
      abort();
  pb_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  uint8_t *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  hb_udp_msg_t m;
  uint8_t again[HB_UDP_DGRAM_MAX];
  if (hb_udp_decode(buf, size, token, &m) == 0) {
    if (hb_udp_encode(&m, token, again) != size || memcmp(again, buf, size) != 0)
      abort(); /* accepted with the token: must be exactly what the token's holder would send */
    view_check(&m);
  }
  if (hb_udp_decode(buf, size, NULL, &m) == 0) {
    if (size == HB_UDP_BODY + m.view_len && /* without a MAC (one that came is not checked here) */
        (hb_udp_encode(&m, NULL, again) != size || memcmp(again, buf, size) != 0))
      abort();
    view_check(&m);
  }
  free(buf);
  return 0;
}
