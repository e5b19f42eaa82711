/*
 * Placement groups in Ray's benchmark shape (issue 17, session 9): many groups created without
 * waiting, then waited for, then removed. rayc_placement_group_create sends an unnamed group's
 * create ahead (wait and remove settle it), the GCS places every waiting group in one pass with
 * one PrepareBundleResources per node, and a raylet fits each group of such a call on its own.
 *
 * One head (`--num-cpus 2`, {"custom": 100}):
 *   - hundred_groups: 100 groups of {custom: 1} created, then all waited for (CREATED), so the
 *     node's 100 are reserved exactly: a 101st stays pending until one is removed; after all are
 *     removed a {custom: 100} group is CREATED (nothing leaked). At RES_MAX 128 a node held only
 *     ~30 such groups (four resource names each) and this timed out;
 *   - more_than_fit: 150 groups created at once: 100 CREATED, 50 pending; removing 50 places the
 *     50 others; all removed leaves the node whole;
 *   - batch_prepare_fits_what_fits: a raylet asked to prepare three groups in one call, of which
 *     the second does not fit, keeps the first and the third and names the second in
 *     failed_groups; what it kept is really held (a group needing it stays pending) until
 *     returned;
 *   - remove_races_create_sent_ahead: groups created and removed at once, and one that fits
 *     nowhere: every remove succeeds, the groups end REMOVED, the node whole;
 *   - full_node_waits_quietly: 200 groups of {custom: 0.001}, more than one node's resource sets
 *     can name (RES_MAX): the rest stay PENDING saying why, nothing is retried while nothing
 *     changes, and they are placed once others are removed.
 */
#include "itest.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/token.h"
#include "proto/gcs.pb-c.h"
#include "proto/node_manager.pb-c.h"

#include <stdlib.h>
#include <unistd.h>

static const rayc_resource custom1[] = {{"custom", 1}};

static int pg_new(const rayc_resource *r, rayc_placement_group *pg)
{
  rayc_bundle b = {.resources = r, .nresources = 1};
  return rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, pg);
}

/* The whole {custom: 100} of the node is free: a group of all of it is CREATED. */
static void expect_node_whole(void)
{
  static const rayc_resource all[] = {{"custom", 100}};
  rayc_placement_group pg;
  ck_assert_int_eq(pg_new(all, &pg), 0);
  int rc = rayc_placement_group_wait(&pg, 10000);
  ck_assert_msg(rc == 0, "a group of the node's whole {custom: 100} was not CREATED: %d (%s)", rc, rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
}

static rpc_client_t *client;

static int call_at(const char *target, const ProtobufCServiceDescriptor *svc, const char *method, const void *req,
                   void *resp, int timeout_ms)
{
  if (!client) {
    char *t = NULL, *err = NULL; /* the cluster's token (it_start sets RAYC_TOKEN_FILE) */
    ck_assert_msg(token_read_file(getenv("RAYC_TOKEN_FILE"), &t, &err) == 0, "token: %s", err ? err : "");
    client = rpc_client_create(&(rpc_client_opts_t){.token = t});
    free(t);
  }
  ProtobufCMessage *r = NULL;
  int rc = rpc_call_sync(rpc_channel_get(client, target ? target : it_address), svc, method, req, timeout_ms, &r, NULL);
  if (resp)
    *(ProtobufCMessage **)resp = r;
  else
    pb_free(r);
  return rc;
}

/* The GCS's record of group id (free with pb_free). */
static Rayc__GetPlacementGroupReply *pg_get(const uint8_t *id)
{
  Rayc__GetPlacementGroupRequest req = RAYC__GET_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  Rayc__GetPlacementGroupReply *rep = NULL;
  ck_assert_int_eq(call_at(NULL, &rayc__placement_group_info_gcs_service__descriptor, "GetPlacementGroup", &req, &rep,
                           5000),
                   0);
  return rep;
}

static int pg_state(const uint8_t *id)
{
  Rayc__GetPlacementGroupReply *rep = pg_get(id);
  int st = rep->placement_group->state;
  pb_free(rep);
  return st;
}

/* Removes nremove of pgs' CREATED groups; every other group must then be placed (it is waited
 * for and removed), and the node is whole again. */
static void remove_then_place_rest(rayc_placement_group *pgs, int n, int nremove)
{
  int removed = 0;
  for (int i = 0; i < n && removed < nremove; i++)
    if (pg_state(pgs[i].id) == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED) {
      ck_assert_int_eq(rayc_placement_group_remove(&pgs[i]), 0);
      pgs[i] = (rayc_placement_group){{0}};
      removed++;
    }
  for (int i = 0; i < n; i++) {
    if (pgs[i].id[0] == 0 && pgs[i].id[1] == 0 && pgs[i].id[2] == 0)
      continue;
    int rc = rayc_placement_group_wait(&pgs[i], 10000);
    ck_assert_msg(rc == 0, "group %d was not placed after %d others were removed: %d (%s)", i, removed, rc,
                  rayc_last_error());
    ck_assert_int_eq(rayc_placement_group_remove(&pgs[i]), 0);
  }
  expect_node_whole();
}

START_TEST(hundred_groups)
{
  it_connect();
  enum { N = 100 };
  static rayc_placement_group pgs[N];
  for (int i = 0; i < N; i++)
    ck_assert_msg(pg_new(custom1, &pgs[i]) == 0, "create %d: %s", i, rayc_last_error());
  for (int i = 0; i < N; i++) {
    int rc = rayc_placement_group_wait(&pgs[i], 20000);
    ck_assert_msg(rc == 0, "group %d of %d {custom: 1} on a node of {custom: 100} was not CREATED: %d (%s)", i, N, rc,
                  rayc_last_error());
  }
  rayc_placement_group extra;
  ck_assert_int_eq(pg_new(custom1, &extra), 0);
  ck_assert_msg(rayc_placement_group_wait(&extra, 1000) == RAYC_ETIMEOUT, "a 101st {custom: 1} fit on {custom: 100}");
  ck_assert_int_eq(rayc_placement_group_remove(&pgs[0]), 0);
  int rc = rayc_placement_group_wait(&extra, 5000);
  ck_assert_msg(rc == 0, "the pending group was not placed once a group was removed: %d (%s)", rc, rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&extra), 0);
  for (int i = 1; i < N; i++)
    ck_assert_msg(rayc_placement_group_remove(&pgs[i]) == 0, "remove %d: %s", i, rayc_last_error());
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(pg_state(pgs[i].id), RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

START_TEST(more_than_fit)
{
  it_connect();
  enum { N = 150, FIT = 100 };
  static rayc_placement_group pgs[N];
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(pg_new(custom1, &pgs[i]), 0);
  int created = 0;
  for (int i = 0; i < N; i++) /* the first waits cover the placement; the rest find it done */
    created += rayc_placement_group_wait(&pgs[i], i < FIT ? 5000 : 200) == 0;
  ck_assert_msg(created == FIT, "%d of %d groups of {custom: 1} CREATED on a node of {custom: 100}", created, N);
  remove_then_place_rest(pgs, N, N - FIT);
  rayc_shutdown();
}
END_TEST

static Rayc__BundleSpec *spec_new(const uint8_t *id, double amount)
{
  Rayc__BundleSpec *s = calloc(1, sizeof(*s));
  Rayc__ResourceEntry *e = calloc(1, sizeof(*e)), **ep = calloc(1, sizeof(*ep));
  rayc__bundle_spec__init(s);
  rayc__resource_entry__init(e);
  e->name = (char *)"custom";
  e->amount = amount;
  ep[0] = e;
  s->placement_group_id = pb_bytes(id, ID_PG_SIZE);
  s->bundle_index = 0;
  s->resources = ep;
  s->n_resources = 1;
  return s;
}

static void spec_free(Rayc__BundleSpec *s)
{
  free(s->resources[0]);
  free(s->resources);
  free(s);
}

START_TEST(batch_prepare_fits_what_fits)
{
  it_connect();
  char path[700], target[128] = "";
  snprintf(path, sizeof(path), "%s/session_latest/raylet_address", it_temp);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(fgets(target, sizeof(target), f));
  fclose(f);
  target[strcspn(target, "\n")] = '\0';
  uint8_t ids[3][ID_PG_SIZE];
  srand((unsigned)getpid());
  for (int g = 0; g < 3; g++)
    for (int i = 0; i < ID_PG_SIZE; i++)
      ids[g][i] = (uint8_t)rand();
  double amounts[3] = {60, 60, 30}; /* the second does not fit after the first */
  Rayc__BundleSpec *specs[3];
  for (int g = 0; g < 3; g++)
    specs[g] = spec_new(ids[g], amounts[g]);
  Rayc__PrepareBundleResourcesRequest prep = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  prep.bundles = specs;
  prep.n_bundles = 3;
  prep.commit = 1;
  Rayc__PrepareBundleResourcesReply *rep = NULL;
  const ProtobufCServiceDescriptor *nm = &rayc__node_manager_service__descriptor;
  ck_assert_int_eq(call_at(target, nm, "PrepareBundleResources", &prep, &rep, 5000), 0);
  ck_assert_msg(!rep->success && rep->committed, "success %d committed %d", rep->success, rep->committed);
  ck_assert_msg(rep->n_failed_groups == 1 && rep->failed_groups[0].len == ID_PG_SIZE &&
                    memcmp(rep->failed_groups[0].data, ids[1], ID_PG_SIZE) == 0,
                "the raylet should name only the second group as not fitting (it named %zu)", rep->n_failed_groups);
  pb_free(rep);
  for (int g = 0; g < 3; g++)
    spec_free(specs[g]);
  /* 90 of the 100 are held: a group of 20 stays pending (the raylet reports within a second) */
  static const rayc_resource c20[] = {{"custom", 20}};
  rayc_placement_group pg;
  ck_assert_int_eq(pg_new(c20, &pg), 0);
  ck_assert_msg(rayc_placement_group_wait(&pg, 2000) == RAYC_ETIMEOUT,
                "a {custom: 20} group fit beside the 90 the raylet said it kept");
  Rayc__CancelResourceReserveRequest cancel = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  ProtobufCBinaryData more = pb_bytes(ids[2], ID_PG_SIZE);
  cancel.placement_group_id = pb_bytes(ids[0], ID_PG_SIZE);
  cancel.bundle_index = -1;
  cancel.more_groups = &more;
  cancel.n_more_groups = 1;
  ck_assert_int_eq(call_at(target, nm, "CancelResourceReserve", &cancel, NULL, 5000), 0);
  int rc = rayc_placement_group_wait(&pg, 10000);
  ck_assert_msg(rc == 0, "the {custom: 20} group was not placed once the two were returned: %d (%s)", rc,
                rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

START_TEST(remove_races_create_sent_ahead)
{
  it_connect();
  enum { N = 200 };
  static rayc_placement_group pgs[N];
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(pg_new(custom1, &pgs[i]), 0);
    ck_assert_msg(rayc_placement_group_remove(&pgs[i]) == 0, "remove %d: %s", i, rayc_last_error());
  }
  static const rayc_resource huge[] = {{"custom", 1000}};
  rayc_placement_group never;
  ck_assert_int_eq(pg_new(huge, &never), 0);
  ck_assert_msg(rayc_placement_group_remove(&never) == 0, "remove: %s", rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_wait(&never, 1000), RAYC_ENOT_FOUND);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(pg_state(pgs[i].id), RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
    ck_assert_int_eq(rayc_placement_group_wait(&pgs[i], 1000), RAYC_ENOT_FOUND);
  }
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

/* Lines of the GCS's log that contain needle. */
static int gcs_log_count(const char *needle)
{
  char path[700], line[2048];
  snprintf(path, sizeof(path), "%s/session_latest/logs/gcs.log", it_temp);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  int n = 0;
  while (fgets(line, sizeof(line), f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static char *pg_detail(const uint8_t *id)
{
  Rayc__GetPlacementGroupReply *rep = pg_get(id);
  char *d = strdup(rep->placement_group->state_detail);
  pb_free(rep);
  return d;
}

/* A node holds at most RES_MAX resource names, four per one-resource bundle: more tiny groups than
 * that stay PENDING saying so (not "retrying" for ever: the GCS offers the node nothing more and
 * its log stays quiet), and are placed once others are removed. */
START_TEST(full_node_waits_quietly)
{
  static const rayc_resource tiny[] = {{"custom", 0.001}};
  it_connect();
  enum { N = 200 };
  static rayc_placement_group pgs[N];
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(pg_new(tiny, &pgs[i]), 0);
  int created = 0, first_pending = -1;
  for (int i = 0; i < N; i++) {
    int ok = rayc_placement_group_wait(&pgs[i], created < 100 ? 5000 : 500) == 0;
    created += ok;
    if (!ok && first_pending < 0)
      first_pending = i;
  }
  ck_assert_msg(created >= 100 && created < N, "%d of %d tiny groups CREATED on one node", created, N);
  char *d = pg_detail(pgs[first_pending].id);
  ck_assert_msg(strstr(d, "as many placement-group bundles as a node can"), "a pending group says: %s", d);
  free(d);
  int failed = gcs_log_count("reservation failed");
  usleep(2000 * 1000);
  ck_assert_int_eq(gcs_log_count("reservation failed"), failed); /* nothing retried meanwhile */
  remove_then_place_rest(pgs, N, N - created);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 128M --resources '{\"custom\": 100}'") != 0) {
    printf("could not start the head node\n");
    return 1;
  }
  Suite *s = suite_create("pg_batch");
  TCase *tc = tcase_create("pg_batch");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, hundred_groups);
  tcase_add_test(tc, more_than_fit);
  tcase_add_test(tc, batch_prepare_fits_what_fits);
  tcase_add_test(tc, remove_races_create_sent_ahead);
  tcase_add_test(tc, full_node_waits_quietly);
  suite_add_tcase(s, tc);
  int rc = it_finish(s);
  rpc_client_destroy(client);
  return rc;
}
