/*
 * Security of a cluster started the normal way (`rayc start --head`: token on
 * by default), with the real daemons and a driver:
 *
 *  - every method of every gRPC service (enumerated from the protobuf-c service
 * descriptors, which a check ties to the `service` blocks of the .proto files,
 * so no method or service is missed), called with no token, a wrong token and a
 * token of the right length that differs in one character, at every kind of
 * server (GCS, raylet, object manager, an actor's worker, the driver's owner
 * server), is answered UNAUTHENTICATED, logged with the peer address, and
 *    changes nothing (nodes, jobs, workers, actors and KV compared before and
 * after; the daemons, the actor and an object still work);
 *  - the token file (0600, 64 hex digits), never printed except by `rayc
 * get-token`; session directories and sockets 0700/0600, owned by us;
 *  - a node joining with a wrong token, or none, is refused before anything
 * starts;
 *  - as root: a process of another uid cannot use the node's Unix sockets (the
 * directory's mode stops it, and with the modes opened, the daemons'
 * SO_PEERCRED check does);
 *  - a two-node cluster with mutual TLS on every channel runs tasks, actors and
 * cross-node object transfers (tests/drivers/secure.c), and plaintext clients
 * are turned away.
 */
#include "itest.h"

#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"
#include "itest_sh.h"
#include "proto/core_worker.pb-c.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_actor.pb-c.h"
#include "proto/job.pb-c.h"
#include "proto/node_manager.pb-c.h"
#include "proto/object_manager.pb-c.h"

#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char *cluster_token(void)
{
  char *t = NULL, *err = NULL;
  int rc = token_read_file(getenv("RAYC_TOKEN_FILE"), &t, &err);
  ck_assert_msg(rc == 0, "token: %s", err ? err : "");
  return t;
}

static ProtobufCMessage *call_ok(rpc_client_t *c, const char *target, const ProtobufCServiceDescriptor *svc,
                                 const char *method, const ProtobufCMessage *req)
{
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(rpc_channel_get(c, target), svc, method, req, 10000, &resp, &detail);
  ck_assert_msg(rc == 0, "%s/%s at %s: %s (%s)", svc->name, method, target, rayc_strerror(rc), detail ? detail : "");
  free(detail);
  return resp;
}

/* ---- the proto files list no service the table above lacks ---- */

/* The source tree: RAYC_BUILD is <src>/build/<flavor>. */
static void source_dir(char *out, size_t n)
{
  snprintf(out, n, "%s/../..", it_build);
}

START_TEST(services_cover_the_protos)
{
  it_find_build();
  char src[1100], pattern[1200];
  source_dir(src, sizeof(src));
  snprintf(pattern, sizeof(pattern), "%s/proto/*.proto", src);
  glob_t g;
  ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
  int seen = 0;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    FILE *f = fopen(g.gl_pathv[i], "r");
    ck_assert_ptr_nonnull(f);
    char line[512], name[256];
    while (fgets(line, sizeof(line), f)) {
      if (sscanf(line, " service %255[A-Za-z0-9_]", name) != 1)
        continue;
      int found = 0;
      for (size_t k = 0; k < pb_n_services; k++)
        found |= strcmp(pb_services[k]->short_name, name) == 0;
      ck_assert_msg(found, "service %s of %s is missing from test_security.c's list", name, g.gl_pathv[i]);
      seen++;
    }
    fclose(f);
  }
  globfree(&g);
  ck_assert_int_eq(seen, (int)pb_n_services);
}
END_TEST

/* ---- every method, without the token ---- */

typedef struct world {
  char gcs[128], raylet[128], om[128], worker[128], owner[128];
  Rayc__NodeInfo *node; /* owned by nodes */
  Rayc__GetAllNodeInfoReply *nodes;
  uint8_t actor_id[RAYC_ACTOR_ID_SIZE];
} world_t;

/* Everything a rejected call could have changed, as text. */
static char *snapshot(rpc_client_t *c, const char *gcs)
{
  char *s = xstrdup(""), *next;
#define ADD(...) \
  (next = xasprintf(__VA_ARGS__), s = xrealloc(s, strlen(s) + strlen(next) + 1), strcat(s, next), free(next))
  Rayc__GetAllNodeInfoRequest nreq = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  Rayc__GetAllNodeInfoReply *nodes = (void *)call_ok(c, gcs, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                                                     &nreq.base);
  for (size_t i = 0; i < nodes->n_nodes; i++)
    ADD("node %zu state %d port %d om %d\n", i, nodes->nodes[i]->state, nodes->nodes[i]->raylet_port,
        nodes->nodes[i]->object_manager_port);
  pb_free(nodes);
  Rayc__GetAllJobInfoRequest jreq = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
  Rayc__GetAllJobInfoReply *jobs = (void *)call_ok(c, gcs, &rayc__job_info_gcs_service__descriptor, "GetAllJobInfo",
                                                   &jreq.base);
  for (size_t i = 0; i < jobs->n_jobs; i++)
    ADD("job %zu dead %d\n", i, jobs->jobs[i]->is_dead);
  pb_free(jobs);
  Rayc__KVKeysRequest kreq = RAYC__KVKEYS_REQUEST__INIT;
  kreq.ns = (char *)"sec";
  Rayc__KVKeysReply *keys = (void *)call_ok(c, gcs, &rayc__internal_kvgcs_service__descriptor, "InternalKVKeys",
                                            &kreq.base);
  for (size_t i = 0; i < keys->n_keys; i++) {
    Rayc__KVGetRequest g = RAYC__KVGET_REQUEST__INIT;
    g.ns = (char *)"sec";
    g.key = keys->keys[i];
    Rayc__KVGetReply *v = (void *)call_ok(c, gcs, &rayc__internal_kvgcs_service__descriptor, "InternalKVGet", &g.base);
    ADD("kv %.*s=%.*s\n", (int)g.key.len, (char *)g.key.data, (int)v->value.len, (char *)v->value.data);
    pb_free(v);
  }
  pb_free(keys);
  Rayc__ListActorsRequest areq = RAYC__LIST_ACTORS_REQUEST__INIT;
  Rayc__ListActorsReply *actors = (void *)call_ok(c, gcs, &rayc__actor_info_gcs_service__descriptor, "ListActors",
                                                  &areq.base);
  for (size_t i = 0; i < actors->n_actors; i++)
    ADD("actor %zu state %d restarts %d\n", i, actors->actors[i]->state, actors->actors[i]->num_restarts);
  pb_free(actors);
  Rayc__GetAllPlacementGroupRequest preq = RAYC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
  Rayc__GetAllPlacementGroupReply *pgs = (void *)call_ok(c, gcs, &rayc__placement_group_info_gcs_service__descriptor,
                                                         "GetAllPlacementGroup", &preq.base);
  for (size_t i = 0; i < pgs->n_placement_groups; i++)
    ADD("placement group %zu state %d\n", i, pgs->placement_groups[i]->state);
  pb_free(pgs);
  Rayc__GetAllWorkerInfoRequest wreq = RAYC__GET_ALL_WORKER_INFO_REQUEST__INIT;
  Rayc__GetAllWorkerInfoReply *workers = (void *)call_ok(c, gcs, &rayc__worker_info_gcs_service__descriptor,
                                                         "GetAllWorkerInfo", &wreq.base);
  size_t alive = 0;
  for (size_t i = 0; i < workers->n_workers; i++)
    alive += workers->workers[i]->is_alive;
  ADD("workers %zu alive %zu\n", workers->n_workers, alive);
  pb_free(workers);
#undef ADD
  return s;
}

/* "ip:port" of an address (the GCS gives an actor's owner as ip "HOST:PORT" and
 * no port). */
static void addr_of(char *out, size_t n, const Rayc__Address *a)
{
  ck_assert_ptr_nonnull(a);
  ck_assert_msg(a->port > 0 || strchr(a->ip, ':'), "address %s port %d", a->ip, a->port);
  if (a->port > 0)
    snprintf(out, n, "%s:%d", a->ip, a->port);
  else
    snprintf(out, n, "%s", a->ip);
}

/* Finds the five servers through the GCS (with the right token). */
static void world_learn(world_t *w, rpc_client_t *c)
{
  snprintf(w->gcs, sizeof(w->gcs), "%s", it_address);
  Rayc__GetAllNodeInfoRequest nreq = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  w->nodes = (void *)call_ok(c, w->gcs, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &nreq.base);
  ck_assert_uint_eq(w->nodes->n_nodes, 1);
  w->node = w->nodes->nodes[0];
  ck_assert_int_gt(w->node->object_manager_port, 0);
  snprintf(w->raylet, sizeof(w->raylet), "%s:%d", w->node->ip, w->node->raylet_port);
  snprintf(w->om, sizeof(w->om), "%s:%d", w->node->ip, w->node->object_manager_port);
  Rayc__ListActorsRequest areq = RAYC__LIST_ACTORS_REQUEST__INIT;
  Rayc__ListActorsReply *actors = (void *)call_ok(c, w->gcs, &rayc__actor_info_gcs_service__descriptor, "ListActors",
                                                  &areq.base);
  ck_assert_uint_eq(actors->n_actors, 1);
  ck_assert_int_eq(actors->actors[0]->state, RAYC__ACTOR_STATE__ACTOR_ALIVE);
  addr_of(w->worker, sizeof(w->worker), actors->actors[0]->address);
  addr_of(w->owner, sizeof(w->owner), actors->actors[0]->owner);
  ck_assert_uint_eq(actors->actors[0]->actor_id.len, RAYC_ACTOR_ID_SIZE);
  memcpy(w->actor_id, actors->actors[0]->actor_id.data, RAYC_ACTOR_ID_SIZE);
  pb_free(actors);
}

/* Every method of every service at target, with empty requests: all
 * UNAUTHENTICATED. */
static int reject_all(rpc_client_t *bad, const char *target, const char *what, const char *how)
{
  int n = 0;
  for (size_t i = 0; i < pb_n_services; i++) {
    for (unsigned m = 0; m < pb_services[i]->n_methods; m++) {
      ProtobufCMessage *resp = NULL;
      char *detail = NULL;
      const char *method = pb_services[i]->methods[m].name;
      int rc = rpc_call_sync(rpc_channel_get(bad, target), pb_services[i], method, NULL, 10000, &resp, &detail);
      ck_assert_msg(rc == RAYC_EUNAUTHENTICATED, "%s/%s at the %s (%s) with %s: %s (%s)", pb_services[i]->name, method,
                    what, target, how, rayc_strerror(rc), detail ? detail : "");
      pb_free(resp);
      free(detail);
      n++;
    }
  }
  return n;
}

/* Requests that would change something if they got through, each expected
 * UNAUTHENTICATED. */
static void reject_mutations(rpc_client_t *bad, const world_t *w, const uint8_t *object_id)
{
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)"sec";
  put.key = pb_bytes("k", 1);
  put.value = pb_bytes("evil", 4);
  put.overwrite = 1;
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  del.ns = (char *)"sec";
  del.key = pb_bytes("k", 1);
  Rayc__UnregisterNodeRequest unreg = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  unreg.node_id = w->node->node_id;
  unreg.reason = (char *)"evil";
  Rayc__AddJobRequest job = RAYC__ADD_JOB_REQUEST__INIT;
  Rayc__KillActorRequest kill = RAYC__KILL_ACTOR_REQUEST__INIT;
  kill.actor_id = pb_bytes(w->actor_id, RAYC_ACTOR_ID_SIZE);
  kill.no_restart = 1;
  Rayc__ShutdownRayletRequest shut = RAYC__SHUTDOWN_RAYLET_REQUEST__INIT;
  Rayc__KillActorWorkerRequest kw = RAYC__KILL_ACTOR_WORKER_REQUEST__INIT;
  kw.actor_id = kill.actor_id;
  ProtobufCBinaryData oid = pb_bytes(object_id, 28);
  Rayc__FreeObjectsRequest fo = RAYC__FREE_OBJECTS_REQUEST__INIT;
  fo.n_object_ids = 1;
  fo.object_ids = &oid;
  struct {
    const char *target;
    const ProtobufCServiceDescriptor *svc;
    const char *method;
    const ProtobufCMessage *req;
  } calls[] = {
      {w->gcs, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base},
      {w->gcs, &rayc__internal_kvgcs_service__descriptor, "InternalKVDel", &del.base},
      {w->gcs, &rayc__node_info_gcs_service__descriptor, "UnregisterNode", &unreg.base},
      {w->gcs, &rayc__job_info_gcs_service__descriptor, "AddJob", &job.base},
      {w->gcs, &rayc__actor_info_gcs_service__descriptor, "KillActor", &kill.base},
      {w->raylet, &rayc__node_manager_service__descriptor, "ShutdownRaylet", &shut.base},
      {w->worker, &rayc__actor_worker_service__descriptor, "KillActorWorker", &kw.base},
      {w->om, &rayc__object_manager_service__descriptor, "FreeObjects", &fo.base},
  };
  for (size_t i = 0; i < ARRAY_LEN(calls); i++) {
    ProtobufCMessage *resp = NULL;
    int rc = rpc_call_sync(rpc_channel_get(bad, calls[i].target), calls[i].svc, calls[i].method, calls[i].req, 10000,
                           &resp, NULL);
    ck_assert_msg(rc == RAYC_EUNAUTHENTICATED, "%s got %s", calls[i].method, rayc_strerror(rc));
    pb_free(resp);
  }
}

/* 1 if the daemon's log in the session names a rejected call from a loopback
 * peer. */
static int log_names_rejection(const char *daemon)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "grep -c 'rpc: rejected /rayc\\..* from ipv4:127.0.0.1:[0-9]*: "
                 "missing or wrong cluster token' "
                 "%s/session_latest/logs/%s.log",
                 it_temp, daemon);
  int n = atoi(out);
  free(out);
  return rc == 0 && n > 0;
}

static int64_t actor_incr(const rayc_actor *a)
{
  int64_t by = 1;
  rayc_arg arg = RAYC_ARG_VAL(&by, sizeof(by));
  rayc_ref r;
  ck_assert_int_eq(rayc_actor_call(a, "incr", &arg, 1, NULL, &r), 0);
  int rc;
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "actor call: %s", rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

START_TEST(every_method_needs_the_token)
{
  /* The driver finds the token itself (RAYC_TOKEN_FILE); its owner server would
   * log each rejection. */
  rayc_config cfg = {.address = it_address, .code_path = it_code_path, .log_level = "error"};
  ck_assert_msg(rayc_init(&cfg) == 0, "rayc_init: %s", rayc_last_error());
  rayc_actor actor;
  ck_assert_int_eq(rayc_actor_create("TCounter", NULL, 0, NULL, &actor), 0);
  ck_assert_int_eq(actor_incr(&actor), 1);
  static const char payload[] = "an object in the store, not inline";
  char big[200 * 1024];
  memset(big, 'o', sizeof(big));
  memcpy(big, payload, sizeof(payload));
  rayc_ref obj;
  ck_assert_int_eq(rayc_put(big, sizeof(big), &obj), 0);
  uint8_t oid[28];
  char hex[RAYC_REF_HEX_LEN];
  rayc_ref_hex(&obj, hex);
  for (int i = 0; i < 28; i++)
    sscanf(hex + 2 * i, "%2hhx", &oid[i]);

  char *token = cluster_token();
  rpc_client_t *good = rpc_client_create(&(rpc_client_opts_t){.token = token});
  world_t w = {0};
  world_learn(&w, good);
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)"sec";
  put.key = pb_bytes("k", 1);
  put.value = pb_bytes("v", 1);
  pb_free(call_ok(good, w.gcs, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base));
  char *before = snapshot(good, w.gcs);

  char wrong[TOKEN_MAX + 1], same_len[TOKEN_MAX + 1];
  ck_assert_int_eq(token_generate(wrong), 0);
  snprintf(same_len, sizeof(same_len), "%s", token);
  same_len[strlen(same_len) - 1] ^= 1; /* differs in the last character only */
  const char *tokens[] = {NULL, wrong, same_len, "x"};
  const char *hows[] = {"no token", "a wrong token", "a token one character off", "a short token"};
  const struct {
    const char *what, *target;
  } servers[] = {{"GCS", w.gcs},
                 {"raylet", w.raylet},
                 {"object manager", w.om},
                 {"actor's worker", w.worker},
                 {"driver's owner server", w.owner}};
  int calls = 0;
  for (size_t t = 0; t < ARRAY_LEN(tokens); t++) {
    rpc_client_t *bad = rpc_client_create(&(rpc_client_opts_t){.token = tokens[t]});
    for (size_t s = 0; s < ARRAY_LEN(servers); s++)
      calls += reject_all(bad, servers[s].target, servers[s].what, hows[t]);
    reject_mutations(bad, &w, oid);
    rpc_client_destroy(bad);
  }
  printf("security: %d calls without the right token, every one UNAUTHENTICATED\n", calls);

  char *after = snapshot(good, w.gcs);
  ck_assert_str_eq(before, after);
  /* Still working: the daemons answer, the actor counts on, the object reads
   * back. */
  ck_assert_int_eq(actor_incr(&actor), 2);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&obj, 1, 10000, &b), 0);
  ck_assert_uint_eq(b.len, sizeof(big));
  ck_assert_mem_eq(b.data, payload, sizeof(payload));
  rayc_buf_release(&b, 1);
  Rayc__GetNodeStatsRequest gs = RAYC__GET_NODE_STATS_REQUEST__INIT;
  pb_free(call_ok(good, w.raylet, &rayc__node_manager_service__descriptor, "GetNodeStats", &gs.base));
  ck_assert(log_names_rejection("gcs"));
  ck_assert(log_names_rejection("raylet"));
  ck_assert(log_names_rejection("store"));
  rayc_ref_release(&obj);
  free(before);
  free(after);
  pb_free(w.nodes);
  rpc_client_destroy(good);
  token_free(token);
  rayc_shutdown();
}
END_TEST

/* ---- files and output ---- */

static void expect_mode(const char *path, unsigned mode)
{
  struct stat st;
  ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
  ck_assert_msg((st.st_mode & 0777) == mode, "%s has mode %03o, not %03o", path, st.st_mode & 0777, mode);
  ck_assert_msg(st.st_uid == geteuid(), "%s is owned by uid %u", path, (unsigned)st.st_uid);
}

START_TEST(token_file_and_modes)
{
  char path[700], *out = NULL;
  snprintf(path, sizeof(path), "%s/cluster_token", it_temp);
  expect_mode(path, 0600);
  char *token = cluster_token();
  ck_assert_uint_eq(strlen(token), 64);
  ck_assert_uint_eq(strspn(token, "0123456789abcdef"), 64);
  snprintf(path, sizeof(path), "%s/session_latest/cluster_token", it_temp);
  expect_mode(path, 0600);
  /* rayc start said where the token is, never what it is. */
  snprintf(path, sizeof(path), "%s/start.out", it_temp);
  char *start_out = NULL;
  ck_assert_int_eq(it_sh(&start_out, "cat %s", path), 0);
  ck_assert_msg(strstr(start_out, "cluster_token") && !strstr(start_out, token), "%s", start_out);
  free(start_out);
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc status --temp-dir %s", it_build, it_temp), 0);
  ck_assert_ptr_null(strstr(out, token));
  free(out);
  /* Only get-token prints it. */
  ck_assert_int_eq(it_sh(&out, "env -u RAYC_TOKEN_FILE %s/bin/rayc get-token --quiet --temp-dir %s", it_build, it_temp),
                   0);
  out[strcspn(out, "\n")] = '\0';
  ck_assert_str_eq(out, token);
  free(out);
  /* The session, its sockets and its logs are ours and private. */
  char sess[600];
  snprintf(sess, sizeof(sess), "%s/session_latest", it_temp);
  static const char *dirs[] = {"", "/sockets", "/logs", "/pids", "/spill"};
  for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
    snprintf(path, sizeof(path), "%s%s/.", sess, dirs[i]);
    expect_mode(path, 0700);
  }
  snprintf(path, sizeof(path), "%s/sockets/raylet", sess);
  expect_mode(path, 0600);
  snprintf(path, sizeof(path), "%s/sockets/store", sess);
  expect_mode(path, 0600);
  token_free(token);
}
END_TEST

/* ---- stopping ---- */

START_TEST(stop_forgets_only_tokens_it_made)
{
  char dir[600], *out = NULL;
  /* A token the head made is published, and removed again by rayc stop. */
  snprintf(dir, sizeof(dir), "%s/made", it_temp);
  ck_assert_int_eq(it_sh(&out,
                         "env -u RAYC_TOKEN_FILE %s/bin/rayc start --head "
                         "--gcs-only --port 0 --temp-dir %s",
                         it_build, dir),
                   0);
  free(out);
  char path[700];
  snprintf(path, sizeof(path), "%s/cluster_token", dir);
  expect_mode(path, 0600);
  ck_assert_int_eq(it_sh(NULL, "%s/bin/rayc stop --temp-dir %s", it_build, dir), 0);
  ck_assert_int_ne(access(path, F_OK), 0);
  /* A token file the user gave (even at that very path) is used as is and never
   * removed. */
  snprintf(dir, sizeof(dir), "%s/given", it_temp);
  ck_assert_int_eq(mkdir_p(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/cluster_token", dir);
  ck_assert_int_eq(token_write_file(path, "a-token-of-my-own"), 0);
  ck_assert_int_eq(it_sh(&out,
                         "%s/bin/rayc start --head --gcs-only --port 0 --temp-dir "
                         "%s --token-file %s",
                         it_build, dir, path),
                   0);
  free(out);
  ck_assert_int_eq(it_sh(&out, "env -u RAYC_TOKEN_FILE %s/bin/rayc get-token --quiet --temp-dir %s", it_build, dir), 0);
  ck_assert_str_eq(out, "a-token-of-my-own\n");
  free(out);
  ck_assert_int_eq(it_sh(NULL, "%s/bin/rayc stop --temp-dir %s", it_build, dir), 0);
  ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

/* ---- joining ---- */

START_TEST(join_with_wrong_token_is_refused)
{
  char dir[600], wrongfile[700], *out = NULL;
  snprintf(dir, sizeof(dir), "%s/joiner", it_temp);
  ck_assert_int_eq(mkdir_p(dir, 0700), 0);
  snprintf(wrongfile, sizeof(wrongfile), "%s/wrong_token", dir);
  char wrong[TOKEN_HEX_LEN + 1];
  ck_assert_int_eq(token_generate(wrong), 0);
  ck_assert_int_eq(token_write_file(wrongfile, wrong), 0);
  int rc = it_sh(&out,
                 "%s/bin/rayc start --address %s --temp-dir %s --token-file %s "
                 "--num-cpus 1",
                 it_build, it_address, dir, wrongfile);
  ck_assert_msg(rc == 1 && strstr(out, "rejected the token") && strstr(out, "nothing was started"), "(%d) %s", rc, out);
  ck_assert_ptr_null(strstr(out, wrong));
  free(out);
  ck_assert_int_eq(it_count_procs(dir), 0);
  /* No token at all (none in its own temp dir): refused the same way. */
  rc = it_sh(&out,
             "env -u RAYC_TOKEN_FILE -u RAYC_TOKEN %s/bin/rayc start --address %s "
             "--temp-dir %s --num-cpus 1",
             it_build, it_address, dir);
  ck_assert_msg(rc == 1 && strstr(out, "wants a token and none was found"), "(%d) %s", rc, out);
  free(out);
  ck_assert_int_eq(it_count_procs(dir), 0);
  /* The cluster still has its one node, alive. */
  rc = it_sh(&out, "%s/bin/rayc status --temp-dir %s", it_build, it_temp);
  ck_assert_msg(rc == 0 && strstr(out, "(1 node alive, 0 dead)"), "%s", out);
  free(out);
  /* A driver with a wrong token is told so. */
  rc = it_sh(&out, "RAYC_TOKEN_FILE=%s %s/bin/example_driver", wrongfile, it_build);
  ck_assert_msg(rc != 0 && strstr(out, "rejected this driver's token"), "(%d) %s", rc, out);
  free(out);
}
END_TEST

/* ---- another uid ---- */

/* In a child running as nobody: connect to path, then read. Returns the child's
 * exit status: 0 connected and was hung up on at once, 1 could not connect
 * (EACCES/EPERM), 2 other. */
static int connect_as_nobody(const char *path)
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
      _exit(5);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
      _exit(errno == EACCES || errno == EPERM ? 1 : 2);
    /* A frame the daemon would answer, were we allowed: length 0 is the
     * smallest. */
    uint32_t zero = 0;
    if (send(fd, &zero, sizeof(zero), MSG_NOSIGNAL) < 0) {
    }
    char c;
    ssize_t n = read(fd, &c, 1);
    _exit(n <= 0 ? 0 : 3);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st));
  return WEXITSTATUS(st);
}

START_TEST(other_uid_cannot_use_the_sockets)
{
  if (geteuid() != 0) {
    printf("SKIPPED: the other-uid check needs root\n");
    return;
  }
  char sess[600], raylet[700], store[700];
  ck_assert_ptr_nonnull(realpath(it_temp, sess));
  snprintf(sess + strlen(sess), sizeof(sess) - strlen(sess), "/session_latest");
  snprintf(raylet, sizeof(raylet), "%s/sockets/raylet", sess);
  snprintf(store, sizeof(store), "%s/sockets/store", sess);
  /* As they are: the 0700 directories stop another uid before the socket. */
  ck_assert_int_eq(connect_as_nobody(raylet), 1);
  ck_assert_int_eq(connect_as_nobody(store), 1);
  /* With every mode opened, the daemons still refuse the peer (SO_PEERCRED):
   * hung up at once. */
  char *cmd = xasprintf("chmod 711 %s %s/ %s/sockets && chmod 666 %s %s", it_temp, sess, sess, raylet, store);
  ck_assert_int_eq(it_run(cmd), 0);
  free(cmd);
  int r1 = connect_as_nobody(raylet), r2 = connect_as_nobody(store);
  cmd = xasprintf("chmod 700 %s %s/ %s/sockets && chmod 600 %s %s", it_temp, sess, sess, raylet, store);
  ck_assert_int_eq(it_run(cmd), 0);
  free(cmd);
  ck_assert_msg(r1 == 0, "raylet: child status %d", r1);
  ck_assert_msg(r2 == 0, "store: child status %d", r2);
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out,
                         "grep -h 'uid 65534 is not ours' %s/logs/raylet.log "
                         "%s/logs/store.log | wc -l",
                         sess, sess),
                   0);
  ck_assert_msg(atoi(out) >= 2, "the daemons did not log the refusals: %s", out);
  free(out);
}
END_TEST

/* ---- TLS across two nodes ---- */

/* Waits up to 120 s for text in the file at path; returns the file's contents
 * (new). */
static char *wait_for_text(const char *path, const char *text)
{
  char *out = NULL;
  for (int i = 0; i < 1200; i++) {
    free(out);
    it_sh(&out, "cat %s", path);
    if (strstr(out, text) || strstr(out, "FAIL"))
      break;
    usleep(100 * 1000);
  }
  ck_assert_msg(strstr(out, text), "%s never said '%s':\n%s", path, text, out);
  return out;
}

/* Every worker of the TLS cluster's two nodes serves on a port of lo..hi (asked
 * over TLS). */
static void check_worker_ports(const char *root, const char *gcs, int lo, int hi)
{
  char cert[1000], key[1000], ca[1000], path[1000], *token = NULL;
  snprintf(cert, sizeof(cert), "%s/certs/node.pem", root);
  snprintf(key, sizeof(key), "%s/certs/node.key", root);
  snprintf(ca, sizeof(ca), "%s/certs/ca.pem", root);
  snprintf(path, sizeof(path), "%s/n1/cluster_token", root);
  ck_assert_int_eq(token_read_file(path, &token, NULL), 0);
  rpc_tls_t files = {cert, key, ca};
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = token, .tls = &files});
  ck_assert_ptr_nonnull(c);
  Rayc__GetAllNodeInfoRequest nreq = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  Rayc__GetAllNodeInfoReply *nodes = (void *)call_ok(c, gcs, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                                                     &nreq.base);
  int served = 0;
  for (size_t i = 0; i < nodes->n_nodes; i++) {
    char raylet[128];
    snprintf(raylet, sizeof(raylet), "%s:%d", nodes->nodes[i]->ip, nodes->nodes[i]->raylet_port);
    Rayc__GetNodeStatsRequest sreq = RAYC__GET_NODE_STATS_REQUEST__INIT;
    Rayc__GetNodeStatsReply *st = (void *)call_ok(c, raylet, &rayc__node_manager_service__descriptor, "GetNodeStats",
                                                  &sreq.base);
    for (size_t k = 0; k < st->n_workers; k++) {
      if (st->workers[k]->port <= 0)
        continue;
      ck_assert_msg(st->workers[k]->port >= lo && st->workers[k]->port <= hi,
                    "a worker serves on port %d, not in %d..%d", st->workers[k]->port, lo, hi);
      served++;
    }
    pb_free(st);
  }
  ck_assert_msg(served >= 2, "only %d workers seen", served);
  pb_free(nodes);
  rpc_client_destroy(c);
  token_free(token);
}

START_TEST(two_nodes_with_tls)
{
  char root[600], src[1100], *out = NULL;
  snprintf(root, sizeof(root), "%s/tls", it_temp);
  source_dir(src, sizeof(src));
  ck_assert_int_eq(it_sh(&out, "%s/deploy/make-test-ca.sh %s/certs", src, root), 0);
  free(out);
  /* Workers keep to a port range too (and the driver's owner server, through
   * the environment). */
  int lo = 30000 + (int)((unsigned)getpid() % 300) * 100, hi = lo + 99;
  char tls[2000], ports[64];
  snprintf(tls, sizeof(tls),
           "--tls-cert %s/certs/node.pem --tls-key %s/certs/node.key --tls-ca "
           "%s/certs/ca.pem",
           root, root, root);
  snprintf(ports, sizeof(ports), "--min-worker-port %d --max-worker-port %d", lo, hi);
  int rc = it_sh(&out,
                 "env -u RAYC_TOKEN_FILE %s/bin/rayc start --head --port 0 "
                 "--temp-dir %s/n1 --num-cpus 1 "
                 "--object-store-memory 128M --resources '{\"n1\": 10}' %s %s",
                 it_build, root, tls, ports);
  ck_assert_msg(rc == 0, "head: %s", out);
  free(out);
  char addr[128], path[1200];
  snprintf(path, sizeof(path), "%s/n1/session_latest/address", root);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(fgets(addr, sizeof(addr), f));
  fclose(f);
  addr[strcspn(addr, "\n")] = '\0';
  rc = it_sh(&out,
             "%s/bin/rayc start --address %s --temp-dir %s/n2 --num-cpus 1 "
             "--object-store-memory 128M "
             "--resources '{\"n2\": 10}' --token-file %s/n1/cluster_token %s %s",
             it_build, addr, root, root, tls, ports);
  ck_assert_msg(rc == 0, "second node: %s", out);
  free(out);
  rc = it_sh(&out, "%s/bin/rayc status --address %s --token-file %s/n1/cluster_token %s", it_build, addr, root, tls);
  ck_assert_msg(rc == 0 && strstr(out, "(2 nodes alive, 0 dead)"), "%s", out);
  free(out);
  /* Plaintext is turned away, even with the right token. */
  rc = it_sh(&out, "%s/bin/rayc status --address %s --token-file %s/n1/cluster_token", it_build, addr, root);
  ck_assert_msg(rc == 1, "a plaintext client got through: %s", out);
  free(out);
  rc = it_sh(NULL,
             "RAYC_ADDRESS=%s RAYC_TOKEN_FILE=%s/n1/cluster_token "
             "RAYC_CODE_PATH=%s/lib/libtest_tasks.so "
             "RAYC_TLS_CERT=%s/certs/node.pem RAYC_TLS_KEY=%s/certs/node.key "
             "RAYC_TLS_CA=%s/certs/ca.pem "
             "RAYC_MIN_WORKER_PORT=%d RAYC_MAX_WORKER_PORT=%d SECURE_HOLD=%s/release "
             "timeout 120 %s/tests/drivers/secure > %s/driver.out 2>&1 &",
             addr, root, it_build, root, root, root, lo, hi, root, it_build, root);
  ck_assert_int_eq(rc, 0);
  snprintf(path, sizeof(path), "%s/driver.out", root);
  free(wait_for_text(path, "secure: holding"));
  check_worker_ports(root, addr, lo, hi);
  ck_assert_int_eq(it_sh(NULL, "touch %s/release", root), 0);
  out = wait_for_text(path, "secure: ok");
  printf("%s", out);
  free(out);
  /* A driver without TLS cannot even register. */
  rc = it_sh(&out,
             "RAYC_ADDRESS=%s RAYC_TOKEN_FILE=%s/n1/cluster_token timeout 60 "
             "%s/tests/drivers/secure",
             addr, root, it_build);
  ck_assert_msg(rc != 0, "a plaintext driver got through: %s", out);
  free(out);
  char logs[1000];
  snprintf(logs, sizeof(logs), "%s/n1/session_latest/logs/gcs.log", root);
  ck_assert_int_eq(it_sh(NULL, "grep -q 'mutual TLS' %s", logs), 0);
  ck_assert_int_eq(it_sh(NULL,
                         "%s/bin/rayc stop --temp-dir %s/n2 && %s/bin/rayc stop "
                         "--temp-dir %s/n1",
                         it_build, root, it_build, root),
                   0);
}
END_TEST

int main(void)
{
  unsetenv("RAYC_TOKEN");
  unsetenv("RAYC_TEMP_DIR");
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("security");
  TCase *tc = tcase_create("security");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, services_cover_the_protos);
  tcase_add_test(tc, token_file_and_modes);
  tcase_add_test(tc, every_method_needs_the_token);
  tcase_add_test(tc, stop_forgets_only_tokens_it_made);
  tcase_add_test(tc, join_with_wrong_token_is_refused);
  tcase_add_test(tc, other_uid_cannot_use_the_sockets);
  tcase_add_test(tc, two_nodes_with_tls);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  /* Whatever a failed test left running. */
  char cmd[4096];
  snprintf(cmd, sizeof(cmd),
           "for d in %s/tls/n2 %s/tls/n1; do [ -d $d ] && %s/bin/rayc stop "
           "--force --temp-dir $d; "
           "done > /dev/null 2>&1",
           it_temp, it_temp, it_build);
  it_run(cmd);
  failed += it_stop();
  return failed ? 1 : 0;
}
