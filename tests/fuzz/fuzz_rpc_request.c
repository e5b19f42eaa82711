/*
 * libFuzzer harness: what the gRPC dispatcher does with a request body before any handler runs
 * (common/rpc_server.c srv_decode, for hot and cold rows alike): decode it as the method's input
 * type and validate it (common/rpc_valid.c). The first two input bytes pick the service and method
 * among every service of the protos; the rest is the body. Each decode is validated with no
 * required fields and with every top-level field required, and a valid message must pack and
 * decode again.
 */
#include "common/pb.h"
#include "common/rpc_valid.h"
#include "proto/core_worker.pb-c.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_actor.pb-c.h"
#include "proto/job.pb-c.h"
#include "proto/gcs_task.pb-c.h"
#include "proto/node_manager.pb-c.h"
#include "proto/object_manager.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "a b c": every top-level field of d. */
static void all_fields(const ProtobufCMessageDescriptor *d, char *out, size_t len)
{
  size_t off = 0;
  out[0] = 0;
  for (unsigned i = 0; i < d->n_fields && off < len; i++)
    off += (size_t)snprintf(out + off, len - off, "%s ", d->fields[i].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  const ProtobufCServiceDescriptor *svc = pb_services[data[0] % pb_n_services];
  const ProtobufCMessageDescriptor *in = svc->methods[data[1] % svc->n_methods].input;
  ProtobufCMessage *m = protobuf_c_message_unpack(in, NULL, size - 2, data + 2);
  if (!m)
    return 0;
  char why[300], req[1024];
  int ok = rpc_valid_check(m, NULL, why, sizeof(why)) == 0;
  all_fields(in, req, sizeof(req));
  if (rpc_valid_paths(in, req, why, sizeof(why)) != 0)
    abort(); /* every field name is a valid path */
  (void)rpc_valid_check(m, req, why, sizeof(why));
  if (ok) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *again = protobuf_c_message_unpack(in, NULL, n, buf);
    if (!again || rpc_valid_check(again, NULL, why, sizeof(why)) != 0)
      abort(); /* a valid request stays valid through a round trip */
    protobuf_c_message_free_unpacked(again, NULL);
    free(buf);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
