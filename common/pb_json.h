/*
 * protobuf-c messages as JSON (jansson), driven by the message descriptors, so that the state
 * API, the CLI's --format json and the head's HTTP endpoint show every field of the protos
 * without a hand-written printer per message. Field names are the .proto names. Bytes become
 * lowercase hex (every bytes field that reaches JSON is an id), enums their value names, a
 * repeated ResourceEntry an object {name: amount} and a repeated Label an object {key: value}.
 */
#ifndef RAYC_COMMON_PB_JSON_H
#define RAYC_COMMON_PB_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Returns a new JSON object for m (borrowed); json_decref() it. NULL m gives JSON null. */
json_t *pb_json_from_message(const ProtobufCMessage *m);

/* The name of value v of enum e, or "UNKNOWN". */
const char *pb_json_enum_name(const ProtobufCEnumDescriptor *e, int v);

#endif
