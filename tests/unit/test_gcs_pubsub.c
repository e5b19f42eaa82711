/* Unit tests of GCS pub/sub (gcs/gcs_pubsub.c): resync rules, held polls answered by publish,
 * timeout and replacement, channel filtering, the bounded buffer, ordering and reply limits, and
 * that payloads kept packed travel as published.
 * Replies are captured through the reply function: no gRPC here. */
#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_pubsub.h"
#include "gcs/gcs_store.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EPOCH = 777, MAX_REPLIES = 64 };

typedef struct captured {
  rpc_call_t *call;
  Rayc__PollReply *reply; /* owned copy */
} captured_t;

static captured_t got[MAX_REPLIES];
static size_t ngot;
static gcs_pubsub_t ps;

/* Fake calls: distinct pointers that pub/sub only hands back. */
static char calls[16];
#define CALL(i) ((rpc_call_t *)(void *)&calls[i])

static void capture(void *ctx, rpc_call_t *call, const Rayc__PollReply *reply)
{
  (void)ctx;
  ck_assert_uint_lt(ngot, MAX_REPLIES);
  got[ngot].call = call;
  got[ngot].reply = (Rayc__PollReply *)gcs_pb_dup(&reply->base);
  ngot++;
}

static void setup(void)
{
  log_init("test", LOG_ERROR);
  gcs_pubsub_init(&ps, 3, 1000, EPOCH, capture, NULL);
  ngot = 0;
}

static void teardown(void)
{
  gcs_pubsub_release(&ps);
  for (size_t i = 0; i < ngot; i++)
    pb_free(got[i].reply);
  ngot = 0;
}

static void publish_node(const char *ip)
{
  Rayc__NodeInfo n = RAYC__NODE_INFO__INIT;
  n.ip = (char *)ip;
  gcs_pubsub_publish_node(&ps, &n);
}

static void publish_job(int pid)
{
  Rayc__JobInfo j = RAYC__JOB_INFO__INIT;
  j.driver_pid = pid;
  gcs_pubsub_publish_job(&ps, &j);
}

/* Polls with channels (PUB_CHANNEL_NONE-terminated; none: all channels). */
static int poll_at(int call, const char *sub, int64_t after, int64_t epoch, int64_t now, ...)
{
  Rayc__PubChannel chans[8];
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  va_list ap;
  va_start(ap, now);
  for (int c; (c = va_arg(ap, int)) != 0;)
    chans[req.n_channels++] = (Rayc__PubChannel)c;
  va_end(ap);
  req.channels = chans;
  req.subscriber_id = pb_bytes(sub, strlen(sub));
  req.after_seq = after;
  req.epoch = epoch;
  const char *why = NULL;
  return gcs_pubsub_poll(&ps, CALL(call), &req, now, &why);
}

#define NODE RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE
#define JOB  RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB

START_TEST(first_poll_and_new_epoch_resync)
{
  publish_node("a");
  ck_assert_int_eq(poll_at(0, "s", 0, 0, 0, 0), 0);
  ck_assert_uint_eq(ngot, 1);
  ck_assert(got[0].reply->resync);
  ck_assert_uint_eq(got[0].reply->n_messages, 0);
  ck_assert_int_eq(got[0].reply->epoch, EPOCH);
  ck_assert_int_eq(got[0].reply->last_seq, 1);
  /* a GCS restart changes the epoch: an old subscriber resyncs */
  ck_assert_int_eq(poll_at(1, "s", 1, EPOCH - 1, 0, 0), 0);
  ck_assert(got[1].reply->resync);
  /* a position past the end (another run's seq) resyncs too */
  ck_assert_int_eq(poll_at(2, "s", 50, EPOCH, 0, 0), 0);
  ck_assert(got[2].reply->resync);
  ck_assert_uint_eq(ps.resyncs, 3);
}
END_TEST

START_TEST(held_until_publish)
{
  ck_assert_int_eq(poll_at(0, "s", 0, EPOCH, 0, NODE, 0), 0);
  ck_assert_uint_eq(ngot, 0);
  ck_assert_uint_eq(ps.npolls, 1);
  gcs_pubsub_flush(&ps); /* nothing published: still held */
  ck_assert_uint_eq(ngot, 0);
  publish_node("10.0.0.1");
  publish_node("10.0.0.2");
  gcs_pubsub_flush(&ps);
  ck_assert_uint_eq(ngot, 1);
  ck_assert_ptr_eq(got[0].call, CALL(0));
  Rayc__PollReply *r = got[0].reply;
  ck_assert(!r->resync);
  ck_assert_uint_eq(r->n_messages, 2);
  ck_assert_int_eq(r->messages[0]->seq, 1);
  ck_assert_int_eq(r->messages[0]->channel, NODE);
  ck_assert_str_eq(r->messages[0]->node->ip, "10.0.0.1");
  ck_assert_str_eq(r->messages[1]->node->ip, "10.0.0.2");
  ck_assert_int_eq(r->last_seq, 2);
  ck_assert_uint_eq(ps.npolls, 0);
  /* polling again from last_seq with nothing new: held again */
  ck_assert_int_eq(poll_at(1, "s", 2, EPOCH, 0, NODE, 0), 0);
  ck_assert_uint_eq(ngot, 1);
}
END_TEST

START_TEST(channels_filter_and_merge_in_order)
{
  ck_assert_int_eq(poll_at(0, "jobs", 0, EPOCH, 0, JOB, 0), 0);
  publish_node("n1");
  gcs_pubsub_flush(&ps);
  ck_assert_uint_eq(ngot, 0); /* a NODE message does not wake a JOB subscriber */
  publish_job(5);
  publish_node("n2");
  publish_job(6);
  gcs_pubsub_flush(&ps);
  ck_assert_uint_eq(ngot, 1);
  ck_assert_uint_eq(got[0].reply->n_messages, 2);
  ck_assert_int_eq(got[0].reply->messages[0]->job->driver_pid, 5);
  ck_assert_int_eq(got[0].reply->messages[1]->job->driver_pid, 6);
  /* all channels (none listed): one list in seq order */
  ck_assert_int_eq(poll_at(1, "all", 0, EPOCH, 0, 0), 0);
  Rayc__PollReply *r = got[1].reply;
  ck_assert_uint_eq(r->n_messages, 4);
  for (size_t i = 0; i < 4; i++)
    ck_assert_int_eq(r->messages[i]->seq, (int64_t)i + 1);
  ck_assert_int_eq(r->messages[1]->channel, JOB);
}
END_TEST

START_TEST(bounded_buffer_resync)
{
  for (int i = 0; i < 5; i++) /* cap 3: seq 1 and 2 are dropped */
    publish_node("x");
  ck_assert_int_eq(ps.ch[NODE].dropped_seq, 2);
  ck_assert_int_eq(poll_at(0, "slow", 1, EPOCH, 0, NODE, 0), 0);
  ck_assert(got[0].reply->resync);
  ck_assert_uint_eq(got[0].reply->n_messages, 0);
  ck_assert_int_eq(got[0].reply->last_seq, 5);
  ck_assert_int_eq(poll_at(1, "ok", 2, EPOCH, 0, NODE, 0), 0);
  ck_assert(!got[1].reply->resync);
  ck_assert_uint_eq(got[1].reply->n_messages, 3);
  ck_assert_int_eq(got[1].reply->messages[0]->seq, 3);
  /* a JOB subscriber is not affected by NODE drops */
  ck_assert_int_eq(poll_at(2, "jobs", 1, EPOCH, 0, JOB, 0), 0);
  ck_assert_uint_eq(ngot, 2);
  /* a held poll whose position falls out of the ring while it waits resyncs on flush */
  ck_assert_int_eq(poll_at(3, "late", 5, EPOCH, 0, NODE, 0), 0);
  for (int i = 0; i < 4; i++)
    publish_node("y");
  gcs_pubsub_flush(&ps);
  ck_assert_uint_eq(ngot, 3);
  ck_assert_ptr_eq(got[2].call, CALL(3));
  ck_assert(got[2].reply->resync);
}
END_TEST

/* What heartbeat replies carry so that raylets poll the JOB channel only when it moved. */
START_TEST(channel_seq_is_the_newest_message)
{
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, JOB), 0); /* never had one */
  publish_node("a");
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, JOB), 0); /* another channel's message */
  publish_job(7);
  publish_node("b");
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, JOB), 2);
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, NODE), 3);
  for (int i = 0; i < 4; i++) /* cap 3: the newest kept is the channel's last */
    publish_job(8 + i);
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, JOB), 7);
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, 0), 0); /* no such channel */
  ck_assert_int_eq(gcs_pubsub_channel_seq(&ps, 99), 0);
}
END_TEST

START_TEST(timeout_replace_and_release)
{
  ck_assert_int_eq(poll_at(0, "a", 0, EPOCH, 100, 0), 0);
  ck_assert_int_eq(poll_at(1, "b", 0, EPOCH, 500, 0), 0);
  gcs_pubsub_expire(&ps, 1099);
  ck_assert_uint_eq(ngot, 0);
  gcs_pubsub_expire(&ps, 1100); /* default timeout 1000 ms */
  ck_assert_uint_eq(ngot, 1);
  ck_assert_ptr_eq(got[0].call, CALL(0));
  ck_assert_uint_eq(got[0].reply->n_messages, 0);
  ck_assert(!got[0].reply->resync);
  /* "b" polls again before its first poll ended: the old one is answered empty */
  publish_job(1);
  ck_assert_int_eq(poll_at(2, "b", 1, EPOCH, 600, NODE, 0), 0);
  ck_assert_uint_eq(ngot, 2);
  ck_assert_ptr_eq(got[1].call, CALL(1));
  ck_assert_uint_eq(got[1].reply->n_messages, 0);
  ck_assert_int_eq(got[1].reply->last_seq, 0); /* told nothing: stays at its position */
  ck_assert_uint_eq(ps.npolls, 1);
  /* an explicit timeout wins over the default */
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  const char *why;
  req.epoch = EPOCH;
  req.after_seq = 1;
  req.timeout_ms = 50;
  ck_assert_int_eq(gcs_pubsub_poll(&ps, CALL(3), &req, 1000, &why), 0);
  gcs_pubsub_expire(&ps, 1050);
  ck_assert_uint_eq(ngot, 3);
  ck_assert_ptr_eq(got[2].call, CALL(3));
  /* release answers what is still held */
  gcs_pubsub_release(&ps);
  ck_assert_uint_eq(ngot, 4);
  ck_assert_ptr_eq(got[3].call, CALL(2));
  gcs_pubsub_init(&ps, 3, 1000, EPOCH, capture, NULL);
}
END_TEST

START_TEST(bad_polls_rejected)
{
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  Rayc__PubChannel bad[] = {(Rayc__PubChannel)9};
  const char *why = NULL;
  req.n_channels = 1;
  req.channels = bad;
  ck_assert_int_eq(gcs_pubsub_poll(&ps, CALL(0), &req, 0, &why), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "unknown channel");
  char id[65];
  memset(id, 'x', sizeof(id));
  req.n_channels = 0;
  req.subscriber_id = pb_bytes(id, sizeof(id));
  ck_assert_int_eq(gcs_pubsub_poll(&ps, CALL(0), &req, 0, &why), RAYC_EINVALID_ARGUMENT);
  ck_assert_uint_eq(ngot, 0);
  ck_assert_uint_eq(ps.npolls, 0);
}
END_TEST

START_TEST(reply_limit_and_actor_payload)
{
  gcs_pubsub_release(&ps);
  gcs_pubsub_init(&ps, 2 * GCS_PUB_MAX_REPLY, 1000, EPOCH, capture, NULL);
  for (int i = 0; i < GCS_PUB_MAX_REPLY + 5; i++)
    publish_job(i);
  ck_assert_int_eq(poll_at(0, "s", 0, EPOCH, 0, JOB, 0), 0);
  ck_assert_uint_eq(got[0].reply->n_messages, GCS_PUB_MAX_REPLY);
  ck_assert_int_eq(got[0].reply->last_seq, GCS_PUB_MAX_REPLY);
  ck_assert_int_eq(poll_at(1, "s", GCS_PUB_MAX_REPLY, EPOCH, 0, JOB, 0), 0);
  ck_assert_uint_eq(got[1].reply->n_messages, 5);
  ck_assert_int_eq(got[1].reply->last_seq, GCS_PUB_MAX_REPLY + 5);
  /* actors travel packed */
  Rayc__JobInfo fake = RAYC__JOB_INFO__INIT;
  fake.driver_pid = 42;
  gcs_pubsub_publish_actor(&ps, &fake.base);
  ck_assert_int_eq(poll_at(2, "a", GCS_PUB_MAX_REPLY + 5, EPOCH, 0, RAYC__PUB_CHANNEL__PUB_CHANNEL_ACTOR, 0), 0);
  Rayc__PubMessage *m = got[2].reply->messages[0];
  Rayc__JobInfo *back = rayc__job_info__unpack(NULL, m->actor.len, m->actor.data);
  ck_assert_int_eq(back->driver_pid, 42);
  pb_free(back);
}
END_TEST

/* The reply of gcs_pubsub_answer packed, as gRPC sends it. */
static uint8_t *raw_reply;
static size_t raw_len;

static void capture_raw(void *ctx, rpc_call_t *call, const Rayc__PollReply *reply)
{
  (void)ctx;
  (void)call;
  free(raw_reply);
  raw_len = protobuf_c_message_get_packed_size(&reply->base);
  raw_reply = xmalloc(raw_len);
  protobuf_c_message_pack(&reply->base, raw_reply);
}

/* The ring keeps NODE, JOB and WORKER payloads packed (gcs_pub_kept_t): a poll's reply must be the
 * bytes of the messages with their payload fields set, also for a payload whose length takes a
 * three-byte prefix, and must unpack to the payloads. */
START_TEST(kept_payloads_travel_as_published)
{
  enum { NRES = 1500 };
  gcs_pubsub_release(&ps);
  gcs_pubsub_init(&ps, 8, 1000, EPOCH, capture_raw, NULL);
  static Rayc__ResourceEntry res[NRES];
  static Rayc__ResourceEntry *resp[NRES];
  static char names[NRES][16];
  Rayc__NodeInfo n = RAYC__NODE_INFO__INIT;
  n.ip = (char *)"10.1.2.3";
  for (size_t i = 0; i < NRES; i++) {
    rayc__resource_entry__init(&res[i]);
    snprintf(names[i], sizeof(names[i]), "res-%zu", i);
    res[i].name = names[i];
    res[i].amount = (double)i;
    resp[i] = &res[i];
  }
  n.n_resources_total = NRES;
  n.resources_total = resp;
  ck_assert_uint_gt(protobuf_c_message_get_packed_size(&n.base), 1 << 14); /* a 3-byte length */
  Rayc__JobInfo j = RAYC__JOB_INFO__INIT;
  j.driver_pid = 77;
  Rayc__WorkerInfo w = RAYC__WORKER_INFO__INIT;
  w.pid = 88;
  w.exit_detail = (char *)"x";
  gcs_pubsub_publish_node(&ps, &n);
  gcs_pubsub_publish_job(&ps, &j);
  gcs_pubsub_publish_worker(&ps, &w);
  ck_assert_int_eq(poll_at(0, "s", 0, EPOCH, 0, 0), 0);

  Rayc__PubMessage m[3] = {RAYC__PUB_MESSAGE__INIT, RAYC__PUB_MESSAGE__INIT, RAYC__PUB_MESSAGE__INIT};
  Rayc__PubMessage *mp[3] = {&m[0], &m[1], &m[2]};
  m[0].channel = NODE, m[0].node = &n;
  m[1].channel = JOB, m[1].job = &j;
  m[2].channel = RAYC__PUB_CHANNEL__PUB_CHANNEL_WORKER, m[2].worker = &w;
  for (int i = 0; i < 3; i++)
    m[i].seq = i + 1;
  Rayc__PollReply want = RAYC__POLL_REPLY__INIT;
  want.epoch = EPOCH;
  want.last_seq = 3;
  want.n_messages = 3;
  want.messages = mp;
  size_t want_len = protobuf_c_message_get_packed_size(&want.base);
  uint8_t *want_bytes = xmalloc(want_len);
  protobuf_c_message_pack(&want.base, want_bytes);
  ck_assert_uint_eq(raw_len, want_len);
  ck_assert(memcmp(raw_reply, want_bytes, want_len) == 0);

  Rayc__PollReply *back = rayc__poll_reply__unpack(NULL, raw_len, raw_reply);
  ck_assert_ptr_nonnull(back);
  ck_assert_uint_eq(back->n_messages, 3);
  ck_assert_str_eq(back->messages[0]->node->ip, "10.1.2.3");
  ck_assert_uint_eq(back->messages[0]->node->n_resources_total, NRES);
  ck_assert_str_eq(back->messages[0]->node->resources_total[NRES - 1]->name, "res-1499");
  ck_assert_int_eq(back->messages[1]->job->driver_pid, 77);
  ck_assert_int_eq(back->messages[2]->worker->pid, 88);
  pb_free(back);
  free(want_bytes);
  free(raw_reply);
  raw_reply = NULL;
}
END_TEST

static Suite *gcs_pubsub_suite(void)
{
  Suite *s = suite_create("gcs_pubsub");
  TCase *tc = tcase_create("pubsub");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, first_poll_and_new_epoch_resync);
  tcase_add_test(tc, held_until_publish);
  tcase_add_test(tc, channels_filter_and_merge_in_order);
  tcase_add_test(tc, bounded_buffer_resync);
  tcase_add_test(tc, channel_seq_is_the_newest_message);
  tcase_add_test(tc, timeout_replace_and_release);
  tcase_add_test(tc, bad_polls_rejected);
  tcase_add_test(tc, reply_limit_and_actor_payload);
  tcase_add_test(tc, kept_payloads_travel_as_published);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(gcs_pubsub_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
