/*
 * GCS pub/sub (Ray's InternalPubSubGcsService): table changes pushed to raylets and core workers
 * through long polls, so nobody has to poll the tables themselves.
 *
 * Publishing. The tables publish on a channel (NODE, JOB, ACTOR, WORKER) with
 * gcs_pubsub_publish_*(); each message gets the next sequence number (one counter for all
 * channels, so a subscriber keeps one position) and is kept in its channel's ring of the last
 * `cap` messages. Older ones are dropped, and the channel remembers the highest seq it dropped.
 *
 * Polling. Poll{channels, after_seq, epoch} is answered at once when a subscribed channel holds
 * messages after after_seq, or with resync when the subscriber cannot be served exactly: its
 * epoch is not this GCS run's (first poll, or the GCS restarted) or a subscribed channel dropped
 * messages it has not seen. Otherwise the call is held: gcs_pubsub_flush() (run by the server
 * once per loop iteration after publishing) answers it when messages arrive, gcs_pubsub_expire()
 * (from the cron) with an empty reply when its timeout passes. A subscriber id with a held poll
 * that polls again gets its old poll answered empty (it gave up on it). Replies go through the
 * reply function given at init, so that tests can capture them without gRPC.
 *
 * The module owns held calls until it replies; gcs_pubsub_release() answers every one of them.
 */
#ifndef RAYC_GCS_PUBSUB_H
#define RAYC_GCS_PUBSUB_H

#include "common/pb.h"
#include "common/rpc.h"

#include <stddef.h>
#include <stdint.h>

enum {
  GCS_PUB_NCHANNELS = 5,    /* PubChannel values 1..4 are used; 0 is NONE */
  GCS_PUB_MAX_REPLY = 1000, /* messages per reply; the subscriber polls again for the rest */
  GCS_PUB_MAX_TIMEOUT_MS = 300000,
  GCS_PUB_SUB_ID_MAX = 64,
};

/* Finishes call with reply (borrowed for the call). */
typedef void (*gcs_pubsub_reply_fn)(void *ctx, rpc_call_t *call, const Rayc__PollReply *reply);

typedef struct gcs_pub_channel {
  Rayc__PubMessage **ring; /* owned, cap slots: the count newest messages, oldest at head */
  size_t head, count;
  int64_t dropped_seq; /* highest seq dropped from this channel; 0: none */
} gcs_pub_channel_t;

typedef struct gcs_poll {
  rpc_call_t *call; /* held until answered */
  uint8_t sub_id[GCS_PUB_SUB_ID_MAX];
  size_t sub_len;
  unsigned mask; /* 1 << channel for each subscribed channel */
  int64_t after_seq;
  int64_t deadline; /* monotonic ms */
  struct gcs_poll *next;
} gcs_poll_t;

typedef struct gcs_pubsub {
  gcs_pub_channel_t ch[GCS_PUB_NCHANNELS];
  size_t cap;
  int64_t seq;   /* the last seq handed out; 0: none yet */
  int64_t epoch; /* this GCS run (wall-clock ms at start): never repeats across restarts */
  int default_timeout_ms;
  gcs_poll_t *polls; /* held, newest first */
  size_t npolls;
  int dirty; /* published since the last flush */
  gcs_pubsub_reply_fn reply;
  void *reply_ctx;
  uint64_t published, resyncs;
} gcs_pubsub_t;

/* Makes an empty pub/sub keeping cap (>= 1) messages per channel. Release with
 * gcs_pubsub_release(). */
void gcs_pubsub_init(gcs_pubsub_t *ps, size_t cap, int default_timeout_ms, int64_t epoch, gcs_pubsub_reply_fn reply,
                     void *reply_ctx);

/* Answers every held poll (empty) and frees the messages. Accepts a zeroed struct. */
void gcs_pubsub_release(gcs_pubsub_t *ps);

/* The seq of channel's newest message (kept or dropped); 0 when it never had one. */
int64_t gcs_pubsub_channel_seq(const gcs_pubsub_t *ps, int channel);

/* Publishes msg (channel and payload set; seq is assigned here) and takes ownership of it. */
void gcs_pubsub_publish(gcs_pubsub_t *ps, Rayc__PubMessage *msg);

/* Publish a copy of info on the NODE / JOB / WORKER channel. ps may be NULL (no-op). */
void gcs_pubsub_publish_node(gcs_pubsub_t *ps, const Rayc__NodeInfo *info);
void gcs_pubsub_publish_job(gcs_pubsub_t *ps, const Rayc__JobInfo *info);
void gcs_pubsub_publish_worker(gcs_pubsub_t *ps, const Rayc__WorkerInfo *info);

/* Publishes actor (any message; packed into PubMessage.actor, meant for rayc.ActorInfo of
 * proto/gcs_actor.proto) on the ACTOR channel. ps may be NULL (no-op). */
void gcs_pubsub_publish_actor(gcs_pubsub_t *ps, const ProtobufCMessage *actor);

/* Handles a Poll at monotonic time now: answers it at once or holds it (see above).
 * RAYC_EINVALID_ARGUMENT (call not taken; *why says why) for a subscriber id over
 * GCS_PUB_SUB_ID_MAX bytes or an unknown channel; 0 otherwise. No channels means all channels. */
int gcs_pubsub_poll(gcs_pubsub_t *ps, rpc_call_t *call, const Rayc__PollRequest *req, int64_t now, const char **why);

/* Answers the held polls that have messages now. */
void gcs_pubsub_flush(gcs_pubsub_t *ps);

/* Answers the held polls whose deadline is past now. */
void gcs_pubsub_expire(gcs_pubsub_t *ps, int64_t now);

/* The RPC handler of InternalPubSubGcsService.Poll (ctx is the gcs_server_t). */
void gcs_pubsub_on_poll(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
