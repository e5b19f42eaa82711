/*
 * GCS pub/sub: per-channel rings of recent messages and held long polls. See gcs_pubsub.h.
 *
 * Held polls are a list: a cluster has a few subscribers per node, and a flush looks at each held
 * poll once (a compare of seqs per subscribed channel), which is cheap next to the replies.
 */
#include "gcs/gcs_pubsub.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_store.h"

#include <stdlib.h>
#include <string.h>

void gcs_pubsub_init(gcs_pubsub_t *ps, size_t cap, int default_timeout_ms, int64_t epoch, gcs_pubsub_reply_fn reply,
                     void *reply_ctx)
{
  memset(ps, 0, sizeof(*ps));
  ps->cap = cap ? cap : 1;
  ps->epoch = epoch;
  ps->default_timeout_ms = default_timeout_ms;
  ps->reply = reply;
  ps->reply_ctx = reply_ctx;
  for (size_t c = 0; c < GCS_PUB_NCHANNELS; c++)
    ps->ch[c].ring = xcalloc(ps->cap, sizeof(*ps->ch[c].ring));
}

/* The newest message of channel c: its seq, 0 when the channel is empty. */
static int64_t gcs_pub_last_seq(const gcs_pub_channel_t *c, size_t cap)
{
  return c->count ? c->ring[(c->head + c->count - 1) % cap]->seq : 0;
}

/* 1 when the ring keeps msg in one block (gcs_pub_kept_t, or gcs_pb_dup_compact for a message
 * published whole): NODE, JOB and WORKER messages, kept per node or job for the cluster's life;
 * ACTOR messages are built by hand. */
static int gcs_pub_compact(const Rayc__PubMessage *msg)
{
  int c = (int)msg->channel;
  return c > 0 && c < GCS_PUB_NCHANNELS && c != RAYC__PUB_CHANNEL__PUB_CHANNEL_ACTOR;
}

static void gcs_pub_free(Rayc__PubMessage *msg)
{
  if (gcs_pub_compact(msg))
    free(msg);
  else
    pb_free(msg);
}

/* Appends msg, in the ring's form (compact or not, as gcs_pub_compact says), to its channel. */
static void gcs_pubsub_put(gcs_pubsub_t *ps, Rayc__PubMessage *msg)
{
  size_t idx = (size_t)msg->channel;
  if (!ps->cap) { /* released: the GCS is stopping */
    gcs_pub_free(msg);
    return;
  }
  if (idx == 0 || idx >= GCS_PUB_NCHANNELS) { /* a bug in the caller: drop, never crash */
    log_error("pubsub: message for unknown channel %d dropped", (int)msg->channel);
    gcs_pub_free(msg);
    return;
  }
  gcs_pub_channel_t *c = &ps->ch[idx];
  msg->seq = ++ps->seq;
  if (c->count == ps->cap) {
    c->dropped_seq = c->ring[c->head]->seq;
    gcs_pub_free(c->ring[c->head]);
    c->head = (c->head + 1) % ps->cap;
    c->count--;
  }
  c->ring[(c->head + c->count) % ps->cap] = msg;
  c->count++;
  ps->published++;
  ps->dirty = 1;
}

void gcs_pubsub_publish(gcs_pubsub_t *ps, Rayc__PubMessage *msg)
{
  if (!ps->cap) { /* released: the GCS is stopping */
    pb_free(msg);
    return;
  }
  if (gcs_pub_compact(msg)) {
    Rayc__PubMessage *kept = (Rayc__PubMessage *)gcs_pb_dup_compact(&msg->base);
    pb_free(msg);
    msg = kept;
  }
  gcs_pubsub_put(ps, msg);
}

/* Writes v as a protobuf varint to out (at least 10 bytes); returns its length. */
static size_t gcs_pub_varint(uint64_t v, uint8_t *out)
{
  size_t n = 0;
  for (; v >= 0x80; v >>= 7)
    out[n++] = (uint8_t)(v | 0x80);
  out[n++] = (uint8_t)v;
  return n;
}

/* A kept NODE, JOB or WORKER message, in one block: the payload travels packed, as the message's
 * one unknown field with the payload field's number (protobuf-c packs unknown fields verbatim).
 * It packs to the same message as with the payload field set, so pollers and gcs_pb_dup read the
 * field; the ring holds ~0.5 KB per node instead of an unpacked copy (~1.2 KB, docs/PERFORMANCE.md
 * "GCS memory per real node (issue 17, session 10)"), and a reply copies the bytes. */
typedef struct gcs_pub_kept {
  Rayc__PubMessage m; /* first: the ring's pointer, freed with free() (gcs_pub_free) */
  ProtobufCMessageUnknownField payload;
} gcs_pub_kept_t;

/* Keeps a packed copy of payload as a new message of channel ch. */
static void gcs_pubsub_publish_copy(gcs_pubsub_t *ps, Rayc__PubChannel ch, const ProtobufCMessage *payload)
{
  if (!ps)
    return;
  const char *name = ch == RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE  ? "node"
                     : ch == RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB ? "job"
                                                                : "worker";
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(&rayc__pub_message__descriptor,
                                                                                      name);
  size_t len = protobuf_c_message_get_packed_size(payload);
  uint8_t prefix[10];
  size_t nprefix = gcs_pub_varint(len, prefix); /* a length-delimited field's data holds its length */
  gcs_pub_kept_t *k = xmalloc(sizeof(*k) + nprefix + len);
  uint8_t *data = (uint8_t *)(k + 1);
  memcpy(data, prefix, nprefix);
  protobuf_c_message_pack(payload, data + nprefix);
  rayc__pub_message__init(&k->m);
  k->m.channel = ch;
  k->payload = (ProtobufCMessageUnknownField){
      .tag = f->id, .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, .len = nprefix + len, .data = data};
  k->m.base.n_unknown_fields = 1;
  k->m.base.unknown_fields = &k->payload;
  gcs_pubsub_put(ps, &k->m);
}

int64_t gcs_pubsub_channel_seq(const gcs_pubsub_t *ps, int channel)
{
  if (channel <= 0 || channel >= GCS_PUB_NCHANNELS || !ps->cap)
    return 0;
  const gcs_pub_channel_t *c = &ps->ch[channel];
  return c->count ? c->ring[(c->head + c->count - 1) % ps->cap]->seq : c->dropped_seq;
}

void gcs_pubsub_publish_node(gcs_pubsub_t *ps, const Rayc__NodeInfo *info)
{
  gcs_pubsub_publish_copy(ps, RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE, &info->base);
}

void gcs_pubsub_publish_job(gcs_pubsub_t *ps, const Rayc__JobInfo *info)
{
  gcs_pubsub_publish_copy(ps, RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB, &info->base);
}

void gcs_pubsub_publish_worker(gcs_pubsub_t *ps, const Rayc__WorkerInfo *info)
{
  gcs_pubsub_publish_copy(ps, RAYC__PUB_CHANNEL__PUB_CHANNEL_WORKER, &info->base);
}

void gcs_pubsub_publish_actor(gcs_pubsub_t *ps, const ProtobufCMessage *actor)
{
  if (!ps)
    return;
  Rayc__PubMessage *m = xcalloc(1, sizeof(*m));
  rayc__pub_message__init(m);
  m->channel = RAYC__PUB_CHANNEL__PUB_CHANNEL_ACTOR;
  m->actor.len = protobuf_c_message_get_packed_size(actor);
  m->actor.data = xmalloc(m->actor.len ? m->actor.len : 1);
  protobuf_c_message_pack(actor, m->actor.data);
  /* built by hand, so free it the way protobuf-c frees unpacked messages: they match (malloc) */
  gcs_pubsub_publish(ps, m);
}

/* ---- answering ---- */

/* 1 when a subscribed channel dropped messages after after_seq: the subscriber must resync. */
static int gcs_pubsub_missed(const gcs_pubsub_t *ps, unsigned mask, int64_t after_seq)
{
  for (size_t c = 1; c < GCS_PUB_NCHANNELS; c++)
    if ((mask & 1u << c) && ps->ch[c].dropped_seq > after_seq)
      return 1;
  return 0;
}

/* 1 when a subscribed channel holds a message after after_seq. */
static int gcs_pubsub_has_news(const gcs_pubsub_t *ps, unsigned mask, int64_t after_seq)
{
  for (size_t c = 1; c < GCS_PUB_NCHANNELS; c++)
    if ((mask & 1u << c) && gcs_pub_last_seq(&ps->ch[c], ps->cap) > after_seq)
      return 1;
  return 0;
}

static int gcs_pub_cmp_seq(const void *a, const void *b)
{
  int64_t x = (*(Rayc__PubMessage *const *)a)->seq, y = (*(Rayc__PubMessage *const *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Replies with the messages after after_seq on mask (at most GCS_PUB_MAX_REPLY, in seq order),
 * or with resync. The messages are borrowed from the rings for the reply. */
static void gcs_pubsub_answer(gcs_pubsub_t *ps, rpc_call_t *call, unsigned mask, int64_t after_seq, int resync)
{
  Rayc__PollReply r = RAYC__POLL_REPLY__INIT;
  Rayc__PubMessage **v = NULL;
  size_t n = 0;
  r.epoch = ps->epoch;
  r.last_seq = mask ? ps->seq : after_seq; /* mask 0: a replaced poll, told nothing new */
  r.resync = resync;
  for (size_t c = 1; c < GCS_PUB_NCHANNELS && !resync; c++) {
    const gcs_pub_channel_t *ch = &ps->ch[c];
    for (size_t i = 0; (mask & 1u << c) && i < ch->count; i++) {
      Rayc__PubMessage *m = ch->ring[(ch->head + i) % ps->cap];
      if (m->seq <= after_seq)
        continue;
      v = n % 64 ? v : xrealloc(v, (n + 64) * sizeof(*v));
      v[n++] = m;
    }
  }
  if (n > 1)
    qsort(v, n, sizeof(*v), gcs_pub_cmp_seq);
  if (n > GCS_PUB_MAX_REPLY) {
    n = GCS_PUB_MAX_REPLY;
    r.last_seq = v[n - 1]->seq; /* the rest comes with the next poll */
  }
  r.n_messages = n;
  r.messages = v;
  if (resync)
    ps->resyncs++;
  ps->reply(ps->reply_ctx, call, &r);
  free(v);
}

static void gcs_pubsub_unlink(gcs_pubsub_t *ps, gcs_poll_t **pp)
{
  gcs_poll_t *p = *pp;
  *pp = p->next;
  ps->npolls--;
  free(p);
}

typedef int (*gcs_poll_pred_fn)(const gcs_pubsub_t *ps, const gcs_poll_t *p, int64_t now);

/* Answers and frees every held poll for which pred says so (pred NULL: all). */
static void gcs_pubsub_answer_if(gcs_pubsub_t *ps, gcs_poll_pred_fn pred, int64_t now)
{
  for (gcs_poll_t **pp = &ps->polls; *pp;) {
    gcs_poll_t *p = *pp;
    if (pred && !pred(ps, p, now)) {
      pp = &p->next;
      continue;
    }
    rpc_call_t *call = p->call;
    unsigned mask = p->mask;
    int64_t after = p->after_seq;
    gcs_pubsub_unlink(ps, pp);
    gcs_pubsub_answer(ps, call, mask, after, gcs_pubsub_missed(ps, mask, after));
  }
}

static int gcs_poll_has_news(const gcs_pubsub_t *ps, const gcs_poll_t *p, int64_t now)
{
  (void)now;
  return gcs_pubsub_has_news(ps, p->mask, p->after_seq) || gcs_pubsub_missed(ps, p->mask, p->after_seq);
}

static int gcs_poll_expired(const gcs_pubsub_t *ps, const gcs_poll_t *p, int64_t now)
{
  (void)ps;
  return now >= p->deadline;
}

void gcs_pubsub_flush(gcs_pubsub_t *ps)
{
  if (!ps->dirty)
    return;
  ps->dirty = 0;
  gcs_pubsub_answer_if(ps, gcs_poll_has_news, 0);
}

void gcs_pubsub_expire(gcs_pubsub_t *ps, int64_t now)
{
  gcs_pubsub_answer_if(ps, gcs_poll_expired, now);
}

void gcs_pubsub_release(gcs_pubsub_t *ps)
{
  if (ps->reply)
    gcs_pubsub_answer_if(ps, NULL, 0);
  for (size_t c = 0; c < GCS_PUB_NCHANNELS; c++) {
    gcs_pub_channel_t *ch = &ps->ch[c];
    for (size_t i = 0; i < ch->count; i++)
      gcs_pub_free(ch->ring[(ch->head + i) % ps->cap]);
    free(ch->ring);
  }
  memset(ps, 0, sizeof(*ps));
}

/* ---- polls ---- */

/* The channel mask of a request; 0 with *why set for an unknown channel. */
static unsigned gcs_pubsub_mask(const Rayc__PollRequest *req, const char **why)
{
  unsigned mask = 0;
  for (size_t i = 0; i < req->n_channels; i++) {
    int c = (int)req->channels[i];
    if (c <= 0 || c >= GCS_PUB_NCHANNELS) {
      *why = "unknown channel";
      return 0;
    }
    mask |= 1u << c;
  }
  return req->n_channels ? mask : ((1u << GCS_PUB_NCHANNELS) - 2);
}

/* Answers (empty) a held poll of the same subscriber: its client gave up on it. */
static void gcs_pubsub_replace(gcs_pubsub_t *ps, const ProtobufCBinaryData *id)
{
  for (gcs_poll_t **pp = &ps->polls; id->len && *pp; pp = &(*pp)->next) {
    gcs_poll_t *p = *pp;
    if (p->sub_len != id->len || memcmp(p->sub_id, id->data, id->len) != 0)
      continue;
    rpc_call_t *call = p->call;
    int64_t after = p->after_seq;
    gcs_pubsub_unlink(ps, pp);
    gcs_pubsub_answer(ps, call, 0, after, 0);
    return;
  }
}

static void gcs_pubsub_hold(gcs_pubsub_t *ps, rpc_call_t *call, const Rayc__PollRequest *req, unsigned mask,
                            int64_t now)
{
  gcs_pubsub_replace(ps, &req->subscriber_id);
  int timeout = req->timeout_ms > 0 ? req->timeout_ms : ps->default_timeout_ms;
  gcs_poll_t *p = xcalloc(1, sizeof(*p));
  p->call = call;
  if (req->subscriber_id.len) /* data may be NULL when empty */
    memcpy(p->sub_id, req->subscriber_id.data, req->subscriber_id.len);
  p->sub_len = req->subscriber_id.len;
  p->mask = mask;
  p->after_seq = req->after_seq;
  p->deadline = now + (timeout < GCS_PUB_MAX_TIMEOUT_MS ? timeout : GCS_PUB_MAX_TIMEOUT_MS);
  p->next = ps->polls;
  ps->polls = p;
  ps->npolls++;
}

int gcs_pubsub_poll(gcs_pubsub_t *ps, rpc_call_t *call, const Rayc__PollRequest *req, int64_t now, const char **why)
{
  if (req->subscriber_id.len > GCS_PUB_SUB_ID_MAX) {
    *why = "subscriber_id longer than 64 bytes";
    return RAYC_EINVALID_ARGUMENT;
  }
  unsigned mask = gcs_pubsub_mask(req, why);
  if (!mask)
    return RAYC_EINVALID_ARGUMENT;
  int resync = req->epoch != ps->epoch || req->after_seq > ps->seq || gcs_pubsub_missed(ps, mask, req->after_seq);
  if (resync || gcs_pubsub_has_news(ps, mask, req->after_seq))
    gcs_pubsub_answer(ps, call, mask, req->after_seq, resync);
  else
    gcs_pubsub_hold(ps, call, req, mask, now);
  return 0;
}

void gcs_pubsub_on_poll(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const char *why = "";
  int rc = gcs_pubsub_poll(&s->pubsub, call, (const Rayc__PollRequest *)req, now_ms(), &why);
  if (rc < 0)
    rpc_reply_error(call, rc, "Poll: %s", why);
}
