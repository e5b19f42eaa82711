/*
 * Client of rayc-store (see store_client.h): blocking request/reply over the store's Unix socket,
 * one mutex per client so threads can share it.
 *
 * Each call sends one LocalMessage with the next seq and reads exactly one reply, which must echo
 * that seq. A transport or framing error leaves the stream out of step, so the client marks
 * itself broken and every later call fails with RAYC_EUNAVAILABLE; the caller reconnects. Offsets
 * and sizes in replies are checked against the mapping before any pointer is formed.
 */
#include "object-store/store_client.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

struct store_client {
  pthread_mutex_t mu;
  int sock;
  int broken;     /* the stream is out of step: fail every call */
  int subscribed; /* only notifications from now on */
  uint64_t seq;   /* of the last request */
  uint8_t *base;
  uint64_t size;
};

/* Per thread: the last error of this thread's store calls (store_client_last_error). */
static __thread char client_err[256];

const char *store_client_last_error(void)
{
  return client_err;
}

static int client_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int client_fail(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(client_err, sizeof(client_err), fmt, ap);
  va_end(ap);
  return code;
}

/* The status of a reply as a RAYC_E* code (a code outside that range is the store's bug). */
static int client_status(const Rayc__LocalMessage *r)
{
  if (!r->status || r->status->code == 0)
    return 0;
  int code = r->status->code;
  if (code > 0 || code <= -4096)
    code = RAYC_EINTERNAL;
  return client_fail(code, "%s",
                     r->status->message && r->status->message[0] ? r->status->message : rayc_strerror(code));
}

static int client_transport_error(store_client_t *c, int rc, const char *what)
{
  c->broken = 1;
  if (rc == RAYC_EUNAVAILABLE || rc == -EPIPE || rc == -ECONNRESET)
    return client_fail(RAYC_EUNAVAILABLE, "the store closed the connection (%s)", what);
  return client_fail(rc == RAYC_EPROTOCOL ? RAYC_EPROTOCOL : RAYC_EUNAVAILABLE, "store %s failed: %s", what,
                     rayc_strerror(rc));
}

/* Sends req and reads its reply, which must carry body want. Holds no lock (callers do). On 0,
 * *out is new (pb_free). fd (may be NULL) receives an fd passed with the reply, else -1. */
static int client_call_locked(store_client_t *c, Rayc__LocalMessage *req, Rayc__LocalMessage__BodyCase want,
                              Rayc__LocalMessage **out, int *fd)
{
  ProtobufCMessage *pm = NULL;
  if (c->broken)
    return client_fail(RAYC_EUNAVAILABLE, "the store connection failed earlier; reconnect");
  if (c->subscribed)
    return client_fail(RAYC_EINVALID_ARGUMENT, "this client is subscribed: use store_client_next_sealed only");
  req->seq = ++c->seq;
  int rc = frame_send_msg(c->sock, &req->base, -1);
  if (rc < 0)
    return client_transport_error(c, rc, "send");
  rc = frame_recv_msg(c->sock, &rayc__local_message__descriptor, &pm, fd);
  if (rc < 0)
    return client_transport_error(c, rc, "receive");
  Rayc__LocalMessage *r = (Rayc__LocalMessage *)pm;
  if (r->seq != req->seq) {
    pb_free(r);
    c->broken = 1;
    return client_fail(RAYC_EPROTOCOL, "store reply has seq %" PRIu64 ", expected %" PRIu64, r->seq, req->seq);
  }
  rc = client_status(r);
  if (rc == 0 && r->body_case != want)
    rc = client_fail(RAYC_EPROTOCOL, "store reply has body %d, expected %d", (int)r->body_case, (int)want);
  if (rc < 0) {
    pb_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int client_call(store_client_t *c, Rayc__LocalMessage *req, Rayc__LocalMessage__BodyCase want,
                       Rayc__LocalMessage **out)
{
  if (!c)
    return client_fail(RAYC_EINVALID_ARGUMENT, "no store client");
  pthread_mutex_lock(&c->mu);
  int rc = client_call_locked(c, req, want, out, NULL);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* A call whose reply is just OK. */
static int client_call_ok(store_client_t *c, Rayc__LocalMessage *req)
{
  Rayc__LocalMessage *r = NULL;
  int rc = client_call(c, req, RAYC__LOCAL_MESSAGE__BODY_OK, &r);
  pb_free(r);
  return rc;
}

/* 1 when [offset, offset + a + b) lies inside the mapping. */
static int client_range_ok(const store_client_t *c, uint64_t offset, uint64_t a, uint64_t b)
{
  return offset <= c->size && a <= c->size - offset && b <= c->size - offset - a;
}

static int client_dial(const char *path, int *out)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path))
    return client_fail(RAYC_EINVALID_ARGUMENT, "socket path too long: %s", path);
  strcpy(addr.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return client_fail(-errno, "socket: %s", strerror(errno));
  if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    int e = errno;
    close(s);
    return client_fail(RAYC_EUNAVAILABLE, "cannot connect to the store at %s: %s", path, strerror(e));
  }
  *out = s;
  return 0;
}

/* Maps the region fd (closing it) after checking it is as large as the store says. */
static int client_map(store_client_t *c, int fd, uint64_t size)
{
  struct stat st;
  int rc = 0;
  if (fd < 0 || size == 0) {
    rc = client_fail(RAYC_EPROTOCOL, "the store sent no region");
    goto out;
  }
  if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < size) {
    rc = client_fail(RAYC_EPROTOCOL, "the store's region is smaller than %" PRIu64 " bytes", size);
    goto out;
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    rc = client_fail(-errno, "cannot map the store's region of %" PRIu64 " bytes: %s", size, strerror(errno));
    goto out;
  }
  c->base = p;
  c->size = size;
out:
  if (fd >= 0)
    close(fd);
  return rc;
}

static int client_handshake(store_client_t *c)
{
  Rayc__StoreConnectRequest hello = RAYC__STORE_CONNECT_REQUEST__INIT;
  hello.pid = (int32_t)getpid();
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT, *r;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT;
  req.store_connect = &hello;
  int fd = -1;
  int rc = client_call_locked(c, &req, RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT_REPLY, &r, &fd);
  if (rc < 0) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  rc = client_map(c, fd, r->store_connect_reply->region_size);
  pb_free(r);
  return rc;
}

int store_client_connect(const char *socket_path, store_client_t **out)
{
  store_client_t *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  c->sock = -1;
  int rc = client_dial(socket_path, &c->sock);
  if (rc == 0)
    rc = client_handshake(c);
  if (rc < 0) {
    store_client_destroy(c);
    return rc;
  }
  *out = c;
  return 0;
}

void store_client_destroy(store_client_t *c)
{
  if (!c)
    return;
  if (c->sock >= 0)
    close(c->sock);
  if (c->base)
    munmap(c->base, c->size);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static ProtobufCBinaryData client_id(const uint8_t *id)
{
  return pb_bytes(id, ID_OBJECT_SIZE);
}

int store_client_create(store_client_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size,
                        const void *owner, size_t owner_len, int timeout_ms, uint8_t **data)
{
  if (!c || !id || !data || (owner_len && !owner))
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_create: missing argument");
  Rayc__StoreCreateRequest cr = RAYC__STORE_CREATE_REQUEST__INIT;
  cr.object_id = client_id(id);
  cr.data_size = data_size;
  cr.metadata_size = metadata_size;
  cr.owner = pb_bytes(owner, owner_len);
  cr.timeout_ms = timeout_ms;
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT, *r;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE;
  req.store_create = &cr;
  int rc = client_call(c, &req, RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE_REPLY, &r);
  if (rc < 0)
    return rc;
  uint64_t off = r->store_create_reply->offset;
  pb_free(r);
  if (!client_range_ok(c, off, data_size, metadata_size))
    return client_fail(RAYC_EPROTOCOL, "the store placed the object outside its region");
  *data = c->base + off;
  return 0;
}

static int client_seal(store_client_t *c, const uint8_t *id, int release)
{
  if (!id)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_seal: no object id");
  Rayc__StoreSealRequest sr = RAYC__STORE_SEAL_REQUEST__INIT;
  sr.object_id = client_id(id);
  sr.release = release;
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_SEAL;
  req.store_seal = &sr;
  return client_call_ok(c, &req);
}

int store_client_seal(store_client_t *c, const uint8_t *id)
{
  return client_seal(c, id, 0);
}

int store_client_seal_release(store_client_t *c, const uint8_t *id)
{
  return client_seal(c, id, 1);
}

int store_client_abort(store_client_t *c, const uint8_t *id)
{
  if (!id)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_abort: no object id");
  Rayc__StoreAbortRequest ar = RAYC__STORE_ABORT_REQUEST__INIT;
  ar.object_id = client_id(id);
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_ABORT;
  req.store_abort = &ar;
  return client_call_ok(c, &req);
}

int store_client_put(store_client_t *c, const uint8_t *id, const void *data, size_t len, const void *owner,
                     size_t owner_len, int timeout_ms)
{
  uint8_t *buf;
  if (len && !data)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_put: no data");
  int rc = store_client_create(c, id, len, 0, owner, owner_len, timeout_ms, &buf);
  if (rc < 0)
    return rc;
  if (len)
    memcpy(buf, data, len);
  rc = store_client_seal_release(c, id);
  if (rc < 0)
    (void)store_client_abort(c, id);
  return rc;
}

/* Fills out[] from a get reply that must answer ids in order. */
static int client_get_fill(const store_client_t *c, const Rayc__StoreGetReply *r, const uint8_t *ids, size_t n,
                           store_object_t *out)
{
  if (r->n_objects != n)
    return client_fail(RAYC_EPROTOCOL, "store answered %zu objects for %zu ids", r->n_objects, n);
  for (size_t i = 0; i < n; i++) {
    const Rayc__StoreObjectLocation *l = r->objects[i];
    memset(&out[i], 0, sizeof(out[i]));
    if (l->object_id.len != ID_OBJECT_SIZE || memcmp(l->object_id.data, ids + i * ID_OBJECT_SIZE, ID_OBJECT_SIZE))
      return client_fail(RAYC_EPROTOCOL, "store answered for another object");
    if (!l->found) {
      out[i].error = l->error < 0 && l->error > -4096 ? l->error : 0;
      continue;
    }
    if (!client_range_ok(c, l->offset, l->data_size, l->metadata_size))
      return client_fail(RAYC_EPROTOCOL, "the store placed an object outside its region");
    out[i].found = 1;
    out[i].data = c->base + l->offset;
    out[i].data_size = l->data_size;
    out[i].metadata = c->base + l->offset + l->data_size;
    out[i].metadata_size = l->metadata_size;
  }
  return 0;
}

int store_client_get(store_client_t *c, const uint8_t *ids, size_t n, int64_t timeout_ms, store_object_t *out)
{
  if (!c || (n && (!ids || !out)))
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_get: missing argument");
  if (n == 0)
    return 0;
  ProtobufCBinaryData *b = xcalloc(n, sizeof(*b));
  for (size_t i = 0; i < n; i++)
    b[i] = client_id(ids + i * ID_OBJECT_SIZE);
  Rayc__StoreGetRequest gr = RAYC__STORE_GET_REQUEST__INIT;
  gr.n_object_ids = n;
  gr.object_ids = b;
  gr.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT, *r;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_GET;
  req.store_get = &gr;
  int rc = client_call(c, &req, RAYC__LOCAL_MESSAGE__BODY_STORE_GET_REPLY, &r);
  free(b);
  if (rc < 0)
    return rc;
  rc = client_get_fill(c, r->store_get_reply, ids, n, out);
  pb_free(r);
  return rc;
}

int store_client_release(store_client_t *c, const uint8_t *id)
{
  if (!id)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_release: no object id");
  Rayc__StoreReleaseRequest rr = RAYC__STORE_RELEASE_REQUEST__INIT;
  rr.object_id = client_id(id);
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_RELEASE;
  req.store_release = &rr;
  return client_call_ok(c, &req);
}

int store_client_contains(store_client_t *c, const uint8_t *id)
{
  if (!id)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_contains: no object id");
  Rayc__StoreContainsRequest cr = RAYC__STORE_CONTAINS_REQUEST__INIT;
  cr.object_id = client_id(id);
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT, *r;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CONTAINS;
  req.store_contains = &cr;
  int rc = client_call(c, &req, RAYC__LOCAL_MESSAGE__BODY_CONTAINS_REPLY, &r);
  if (rc < 0)
    return rc;
  rc = r->contains_reply ? 1 : 0;
  pb_free(r);
  return rc;
}

int store_client_delete(store_client_t *c, const uint8_t *ids, size_t n)
{
  if (n && !ids)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_delete: no ids");
  ProtobufCBinaryData *b = xcalloc(n, sizeof(*b));
  for (size_t i = 0; i < n; i++)
    b[i] = client_id(ids + i * ID_OBJECT_SIZE);
  Rayc__StoreDeleteRequest dr = RAYC__STORE_DELETE_REQUEST__INIT;
  dr.n_object_ids = n;
  dr.object_ids = b;
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_DELETE;
  req.store_delete = &dr;
  int rc = client_call_ok(c, &req);
  free(b);
  return rc;
}

static void client_stats_copy(const Rayc__StoreStatsReply *r, store_stats_t *out)
{
  memset(out, 0, sizeof(*out));
  out->capacity = r->capacity;
  out->bytes_used = r->bytes_used;
  out->num_objects = r->num_objects;
  out->num_in_memory = r->num_in_memory;
  out->bytes_primary = r->bytes_primary;
  out->bytes_secondary = r->bytes_secondary;
  out->num_spilled = r->num_spilled;
  out->bytes_spilled = r->bytes_spilled;
  out->num_spilled_only = r->num_spilled_only;
  out->spill_files = r->spill_files;
  out->spill_file_bytes = r->spill_file_bytes;
  out->total_spilled_objects = r->total_spilled_objects;
  out->total_spilled_bytes = r->total_spilled_bytes;
  out->total_restored_objects = r->total_restored_objects;
  out->total_restored_bytes = r->total_restored_bytes;
  out->total_evicted_objects = r->total_evicted_objects;
  out->total_evicted_bytes = r->total_evicted_bytes;
  out->total_pulled_objects = r->total_pulled_objects;
  out->total_pulled_bytes = r->total_pulled_bytes;
  out->total_served_chunks = r->total_served_chunks;
  out->total_served_bytes = r->total_served_bytes;
  out->object_manager_port = r->object_manager_port;
  out->num_pulls_active = r->num_pulls_active;
}

int store_client_stats(store_client_t *c, store_stats_t *out)
{
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT, *r;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_STATS;
  req.store_stats = 1;
  int rc = client_call(c, &req, RAYC__LOCAL_MESSAGE__BODY_STORE_STATS_REPLY, &r);
  if (rc < 0)
    return rc;
  client_stats_copy(r->store_stats_reply, out);
  pb_free(r);
  return 0;
}

int store_client_pull(store_client_t *c, const uint8_t *id, const char *const *sources, size_t nsources,
                      int64_t timeout_ms)
{
  if (!id || (nsources && !sources))
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_pull: missing argument");
  Rayc__StorePullRequest pr = RAYC__STORE_PULL_REQUEST__INIT;
  pr.object_id = client_id(id);
  pr.n_sources = nsources;
  pr.sources = (char **)(uintptr_t)sources;
  pr.timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_PULL;
  req.store_pull = &pr;
  return client_call_ok(c, &req);
}

int store_client_subscribe(store_client_t *c)
{
  Rayc__LocalMessage req = RAYC__LOCAL_MESSAGE__INIT;
  req.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_SUBSCRIBE;
  req.store_subscribe = 1;
  int rc = client_call_ok(c, &req);
  if (rc == 0)
    c->subscribed = 1;
  return rc;
}

/* Reads one notification frame (the socket is readable); c->mu held. */
static int client_read_sealed(store_client_t *c, store_sealed_t *out)
{
  ProtobufCMessage *pm = NULL;
  int rc = frame_recv_msg(c->sock, &rayc__local_message__descriptor, &pm, NULL);
  if (rc < 0)
    return client_transport_error(c, rc, "receive");
  Rayc__LocalMessage *m = (Rayc__LocalMessage *)pm;
  const Rayc__StoreObjectSealed *n = m->store_object_sealed;
  if (m->body_case != RAYC__LOCAL_MESSAGE__BODY_STORE_OBJECT_SEALED || n->object_id.len != ID_OBJECT_SIZE) {
    pb_free(m);
    c->broken = 1;
    return client_fail(RAYC_EPROTOCOL, "the store sent something other than a seal notification");
  }
  memcpy(out->id, n->object_id.data, ID_OBJECT_SIZE);
  out->data_size = n->data_size;
  out->metadata_size = n->metadata_size;
  pb_free(m);
  return 1;
}

int store_client_next_sealed(store_client_t *c, int timeout_ms, store_sealed_t *out)
{
  if (!c || !out || !c->subscribed)
    return client_fail(RAYC_EINVALID_ARGUMENT, "store_client_next_sealed: not subscribed");
  pthread_mutex_lock(&c->mu);
  int rc;
  if (c->broken) {
    rc = client_fail(RAYC_EUNAVAILABLE, "the store connection failed earlier; reconnect");
    goto out;
  }
  struct pollfd p = {.fd = c->sock, .events = POLLIN};
  do
    rc = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
  while (rc < 0 && errno == EINTR);
  if (rc < 0)
    rc = client_fail(-errno, "poll: %s", strerror(errno));
  else if (rc > 0)
    rc = client_read_sealed(c, out);
out:
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int store_client_fd(const store_client_t *c)
{
  return c ? c->sock : -1;
}

const uint8_t *store_client_region(const store_client_t *c, uint64_t *size)
{
  if (size)
    *size = c->size;
  return c->base;
}
