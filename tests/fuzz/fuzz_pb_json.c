/*
 * libFuzzer harness: protobuf messages from the network rendered as JSON (common/pb_json.c, jansson
 * underneath), as the state API, `rayc list --format json` and the dashboard do with what the GCS
 * sends. The first two bytes pick a service and a method, the third's low bit its request or
 * reply type; the rest is decoded as that message. Whatever decodes must render as a JSON object
 * that jansson prints and parses back with one key per field that is set.
 */
#include "common/pb.h"
#include "common/pb_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 3)
    return 0;
  const ProtobufCServiceDescriptor *svc = pb_services[data[0] % pb_n_services];
  const ProtobufCMethodDescriptor *md = &svc->methods[data[1] % svc->n_methods];
  const ProtobufCMessageDescriptor *d = data[2] & 1 ? md->output : md->input;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 3, data + 3);
  if (!m)
    return 0;
  json_t *j = pb_json_from_message(m);
  char *text = json_dumps(j, JSON_COMPACT);
  json_error_t err;
  json_t *back = text ? json_loads(text, 0, &err) : NULL;
  if (!json_is_object(j) || !back || !json_equal(j, back))
    abort(); /* every decoded message renders as JSON that reads back the same */
  if (json_object_size(j) > d->n_fields)
    abort(); /* no key that is not a field */
  json_decref(back);
  free(text);
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
