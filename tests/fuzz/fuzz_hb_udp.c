/*
 * libFuzzer harness: the heartbeat datagram parser (common/hb_udp.c), which the GCS runs on every
 * datagram that reaches its UDP port and the raylet on every answer. Whatever arrives, decoding
 * reads only the datagram's bytes (the input is copied to a block of exactly its size, so ASan sees
 * any read past it), and what it accepts is a datagram that encodes back to the same bytes: with
 * the token, the MAC it checked; without one, the same body.
 */
#include "common/hb_udp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "fuzz-token";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  uint8_t *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  hb_udp_msg_t m;
  uint8_t again[HB_UDP_MAX];
  if (hb_udp_decode(buf, size, token, &m) == 0) {
    if (hb_udp_encode(&m, token, again) != size || memcmp(again, buf, size) != 0)
      abort(); /* accepted with the token: must be exactly what the token's holder would send */
  }
  if (hb_udp_decode(buf, size, NULL, &m) == 0 && size == HB_UDP_BODY) {
    if (hb_udp_encode(&m, NULL, again) != size || memcmp(again, buf, size) != 0)
      abort();
  }
  free(buf);
  return 0;
}
