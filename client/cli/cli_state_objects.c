/*
 * The state API's objects (Ray's `ray list objects` / `ray summary objects`): every object in the
 * object stores of the alive nodes, asked of each node's rayc-store (ObjectManagerService.
 * ListObjects) at the address the GCS's node table gives. A row is one copy on one node: its id,
 * size, node, owner (the process that created it: node, ip, port, worker id), job (from the
 * ObjectID), and Ray's reference type as the store sees it: PINNED_IN_MEMORY (the primary copy,
 * in shared memory), SPILLED (the primary copy, only in a spill file) or CACHED_COPY (a copy pulled
 * from another node, evictable); local_refs counts this node's processes holding it now. Objects
 * small enough to travel inline live only in their owner's memory and are not listed; call sites
 * are not recorded ("disabled", as Ray shows them by default).
 */
#include "client/cli/cli_state.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OBJECTS_PER_NODE = 10000 };

static json_t *objects_hex(const ProtobufCBinaryData *b)
{
  char *hex = xmalloc(2 * b->len + 1);
  hex[0] = '\0';
  for (size_t i = 0; i < b->len; i++)
    sprintf(hex + 2 * i, "%02x", b->data[i]);
  json_t *s = json_string(hex);
  free(hex);
  return s;
}

static void objects_owner(json_t *row, const ProtobufCBinaryData *owner)
{
  Rayc__Address *a = owner->len ? rayc__address__unpack(NULL, owner->len, owner->data) : NULL;
  json_object_set_new(row, "owner_ip", json_string(a ? a->ip : ""));
  json_object_set_new(row, "owner_port", json_integer(a ? a->port : 0));
  json_object_set_new(row, "owner_node_id", a ? objects_hex(&a->node_id) : json_string(""));
  json_object_set_new(row, "owner_worker_id", a ? objects_hex(&a->worker_id) : json_string(""));
  pb_free(a);
}

static json_t *objects_row(const Rayc__StoreObjectInfo *o, const char *node, const char *ip)
{
  uint8_t job[ID_JOB_SIZE] = {0};
  char jhex[2 * ID_JOB_SIZE + 1] = "";
  if (o->object_id.len == ID_OBJECT_SIZE) {
    memcpy(job, o->object_id.data + ID_TASK_SIZE - ID_JOB_SIZE, ID_JOB_SIZE);
    job[0] &= 0x7f;
    id_hex(job, ID_JOB_SIZE, jhex);
  }
  const char *type = o->secondary ? "CACHED_COPY" : o->in_memory ? "PINNED_IN_MEMORY" : "SPILLED";
  json_t *row = json_pack("{s:o, s:s, s:s, s:I, s:I, s:I, s:s, s:b, s:b, s:I, s:s, s:I, s:s}", "object_id",
                          objects_hex(&o->object_id), "node_id", node, "ip", ip, "object_size",
                          (json_int_t)(o->data_size + o->metadata_size), "data_size", (json_int_t)o->data_size,
                          "metadata_size", (json_int_t)o->metadata_size, "reference_type", type, "in_memory",
                          o->in_memory, "spilled", o->spilled, "local_refs", (json_int_t)o->local_refs, "job_id", jhex,
                          "created_ms", (json_int_t)o->created_ms, "call_site", "disabled");
  objects_owner(row, &o->owner);
  return row;
}

/* Asks one node's store; appends its rows. 0 or a code with *err (new). */
static int objects_of_node(const state_src_t *s, const Rayc__NodeInfo *n, json_t *rows, char **err)
{
  char node[2 * ID_NODE_SIZE + 1] = "";
  if (n->node_id.len == ID_NODE_SIZE)
    id_hex(n->node_id.data, ID_NODE_SIZE, node);
  int v6 = strchr(n->ip, ':') != NULL;
  char *addr = xasprintf("%s%s%s:%d", v6 ? "[" : "", n->ip, v6 ? "]" : "", n->object_manager_port);
  Rayc__ListObjectsRequest req = RAYC__LIST_OBJECTS_REQUEST__INIT;
  req.limit = OBJECTS_PER_NODE;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(rpc_channel_get(s->client, addr), &rayc__object_manager_service__descriptor, "ListObjects",
                         &req.base, s->timeout_ms, &resp, &detail);
  if (rc == 0) {
    const Rayc__ListObjectsReply *r = (const Rayc__ListObjectsReply *)resp;
    for (size_t i = 0; i < r->n_objects; i++)
      json_array_append_new(rows, objects_row(r->objects[i], node, n->ip));
  } else {
    *err = xasprintf("the store of node %s (%s) did not answer: %s", node, addr,
                     detail && *detail ? detail : rayc_strerror(rc));
  }
  free(detail);
  free(addr);
  pb_free(resp);
  return rc;
}

int state_fetch_objects(const state_src_t *s, json_t **rows, char **err)
{
  if (!s->client) {
    *err = xstrdup("objects are asked of every node's store: no client for that here");
    return RAYC_EINVALID_ARGUMENT;
  }
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(s->gcs, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, s->timeout_ms,
                         &resp, &detail);
  if (rc != 0) {
    *err = xasprintf("GetAllNodeInfo failed: %s", detail && *detail ? detail : rayc_strerror(rc));
    free(detail);
    return rc;
  }
  const Rayc__GetAllNodeInfoReply *r = (const Rayc__GetAllNodeInfoReply *)resp;
  *rows = json_array();
  size_t asked = 0, failed = 0;
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes[i];
    if (n->state != RAYC__NODE_STATE__NODE_ALIVE || n->object_manager_port <= 0)
      continue;
    char *why = NULL;
    asked++;
    if (objects_of_node(s, n, *rows, &why) != 0) {
      failed++;
      fprintf(stderr, "warning: %s\n", why); /* the others' objects are still worth showing */
      free(why);
    }
  }
  pb_free(resp);
  if (asked && failed == asked) {
    json_decref(*rows);
    *rows = NULL;
    *err = xasprintf("no node's store answered (%zu asked)", asked);
    return RAYC_EUNAVAILABLE;
  }
  return 0;
}
