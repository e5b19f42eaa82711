/*
 * Core worker life cycle: creating the process's core worker, connecting it to its node (the
 * raylet's local socket, the raylet's gRPC port, the store), per-thread error details, and
 * tearing it all down.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"
#include "worker/cw_events.h"

#include "common/frame.h"
#include "common/log.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* This thread's last error message, as long as it needs to be (a failed Python task's message
 * carries its pickled exception): a malloc'ed string per thread, freed when the thread exits
 * (cw_proc.err_key). */
static void cw_err_key_create(void)
{
  (void)pthread_key_create(&cw_proc.err_key, free);
}

const char *rayc_last_error(void)
{
  pthread_once(&cw_proc.err_once, cw_err_key_create);
  const char *s = pthread_getspecific(cw_proc.err_key);
  return s ? s : "";
}

int cw_set_error(int err, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  pthread_once(&cw_proc.err_once, cw_err_key_create);
  free(pthread_getspecific(cw_proc.err_key));
  (void)pthread_setspecific(cw_proc.err_key, msg);
  return err;
}

cw_t *cw_create(int is_worker)
{
  cw_t *cw = xcalloc(1, sizeof(*cw));
  pthread_mutex_init(&cw->mu, NULL);
  pthread_cond_init(&cw->cv, NULL);
  pthread_cond_init(&cw->bg_cv, NULL);
  cw->is_worker = is_worker;
  cw->raylet_fd = -1;
  cw->worker_id = id_worker_random();
  cw->pid = (int)getpid();
  hmap_init_ids(&cw->objects); /* looked up per ref on every get and wait */
  hmap_init_ids(&cw->tasks);
  hmap_init(&cw->peers);
  const char *token = getenv("RAYC_TOKEN");
  cw->token = token && *token ? xstrdup(token) : NULL;
  rpc_tls_from_env(&cw->tls);
  const char *lo = getenv("RAYC_MIN_WORKER_PORT"), *hi = getenv("RAYC_MAX_WORKER_PORT");
  cw->min_port = lo ? atoi(lo) : 0;
  cw->max_port = hi ? atoi(hi) : cw->min_port;
  cw->gcs_reconnect_timeout_ms = cw_gcs_reconnect_timeout_ms();
  const char *pt = getenv("RAYC_OBJECT_STORE_PUT_TIMEOUT_MS");
  long put_ms = pt && *pt ? strtol(pt, NULL, 10) : 0;
  cw->put_timeout_ms = put_ms > 0 && put_ms <= 24L * 3600 * 1000 ? (int)put_ms : CW_PUT_TIMEOUT_MS;
  cw->lease_idle_ms = cw_lease_idle_ms();
  cw->push_batch_max = cw_push_batch_max();
  cw->pipeline_any = cw_pipeline_any();
  cw->oom_retries = cw_oom_retries();
  cw->copy = cw_copy_create();
  return cw;
}

void cw_fill_address(cw_t *cw, Rayc__Address *a)
{
  a->node_id = pb_bytes(cw->node_id.b, ID_NODE_SIZE);
  a->ip = cw->node_ip;
  a->port = cw->port;
  a->worker_id = pb_bytes(cw->worker_id.b, ID_WORKER_SIZE);
}

static int cw_unix_connect(const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

/* Registers with the raylet over its socket; on 0 the reply's node facts are in cw. */
static int cw_register(cw_t *cw, int is_driver, char **store_socket)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__RegisterClientRequest req = RAYC__REGISTER_CLIENT_REQUEST__INIT;
  req.worker_id = pb_bytes(cw->worker_id.b, ID_WORKER_SIZE);
  req.pid = getpid();
  req.port = cw->port;
  req.is_driver = is_driver;
  req.job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  req.code_path = cw->code_path ? cw->code_path : (char *)"";
  req.language = cw->language;
  m.seq = 1;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_REGISTER_WORKER;
  m.register_worker = &req;
  int rc = frame_send_msg(cw->raylet_fd, &m.base, -1);
  Rayc__LocalMessage *rep = NULL;
  if (rc == 0)
    rc = frame_recv_msg(cw->raylet_fd, &rayc__local_message__descriptor, (ProtobufCMessage **)&rep, NULL);
  if (rc != 0)
    return cw_set_error(rc, "registering with the raylet failed: %s", rayc_strerror(rc));
  if ((rep->status && rep->status->code != 0) || rep->body_case != RAYC__LOCAL_MESSAGE__BODY_REGISTER_WORKER_REPLY ||
      rep->register_worker_reply->node_id.len != ID_NODE_SIZE) {
    rc = rep->status && rep->status->code ? rep->status->code : RAYC_EPROTOCOL;
    cw_set_error(rc, "the raylet refused registration: %s", rep->status ? rep->status->message : "bad reply");
    pb_free(rep);
    return rc;
  }
  Rayc__RegisterClientReply *r = rep->register_worker_reply;
  memcpy(cw->node_id.b, r->node_id.data, ID_NODE_SIZE);
  snprintf(cw->node_ip, sizeof(cw->node_ip), "%s", r->node_ip);
  if (r->object_manager_port > 0)
    snprintf(cw->store_address, sizeof(cw->store_address), "%s:%d", r->node_ip, r->object_manager_port);
  char target[128];
  snprintf(target, sizeof(target), "%s:%d", r->node_ip, r->raylet_port);
  cw->raylet = rpc_channel_get(cw->client, target);
  *store_socket = xstrdup(r->store_socket);
  pb_free(rep);
  return 0;
}

int cw_connect_node(cw_t *cw, const char *raylet_socket, int is_driver)
{
  cw->raylet_fd = cw_unix_connect(raylet_socket);
  if (cw->raylet_fd < 0) {
    int e = cw->raylet_fd;
    cw->raylet_fd = -1;
    return cw_set_error(RAYC_EUNAVAILABLE, "cannot connect to the raylet at %s: %s", raylet_socket, strerror(-e));
  }
  char *store_socket = NULL;
  int rc = cw_register(cw, is_driver, &store_socket);
  if (rc != 0)
    return rc;
  rc = store_client_connect(store_socket, &cw->store);
  if (rc != 0)
    cw_set_error(rc, "cannot connect to the object store at %s: %s", store_socket, rayc_strerror(rc));
  free(store_socket);
  if (rc == 0 && pthread_create(&cw->bg, NULL, cw_bg_main, cw) == 0) {
    cw->bg_running = 1;
    pthread_setname_np(cw->bg, "cw-bg");
  }
  return rc;
}

void cw_destroy(cw_t *cw)
{
  if (!cw)
    return;
  pthread_mutex_lock(&cw->mu);
  cw->stopping = 1;
  pthread_cond_broadcast(&cw->bg_cv);
  pthread_mutex_unlock(&cw->mu);
  if (cw->bg_running)
    pthread_join(cw->bg, NULL);
  cw_pg_drain(cw, CW_PG_CREATE_WAIT_MS + 2000); /* creates sent ahead reach the GCS (cw_pg.c) */
  cw_events_flush(cw, 2000); /* what the last second recorded */
  pthread_mutex_lock(&cw->mu);
  if (cw->raylet)
    cw_leases_return_idle(cw, 1);
  cw_borrow_flush(cw); /* owners of refs we borrow hear that we drop them; parked calls are answered */
  cw_objects_release_all(cw);
  cw->client_closing = 1;
  pthread_mutex_unlock(&cw->mu);
  rpc_client_destroy(cw->client); /* in-flight calls finish with RAYC_ECANCELLED */
  pthread_mutex_lock(&cw->mu);
  cw_classes_free(cw);
  cw_objects_release_all(cw);
  cw_borrow_release(cw);
  pthread_mutex_unlock(&cw->mu);
  store_client_destroy(cw->store);
  if (cw->raylet_fd >= 0)
    close(cw->raylet_fd);
  hmap_release(&cw->objects);
  hmap_release(&cw->tasks);
  free(cw->wait_memo.ids);
  free(cw->code_path);
  cw_pg_release(cw);
  free(cw->session_dir);
  token_free(cw->token);
  cw_copy_destroy(cw->copy);
  cw_events_release(cw);
  pthread_cond_destroy(&cw->bg_cv);
  pthread_cond_destroy(&cw->cv);
  pthread_mutex_destroy(&cw->mu);
  free(cw);
}

int rayc_node_id(char *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_node_id: out must not be NULL");
  id_hex(cw->node_id.b, ID_NODE_SIZE, out);
  return 0;
}

int cw_fetch_remote(cw_t *cw, const uint8_t *id, const char *location)
{
  if (!location || !*location) {
    char hex[9];
    return cw_set_error(RAYC_EOBJECT_LOST, "object %s is on another node whose object manager is unknown",
                        id_short(id, ID_OBJECT_SIZE, hex));
  }
  int rc = store_client_pull(cw->store, id, &location, 1, 60000);
  if (rc != 0) {
    char hex[9];
    cw_set_error(rc, "pulling object %s from %s failed: %s (%s)", id_short(id, ID_OBJECT_SIZE, hex), location,
                 rayc_strerror(rc), store_client_last_error());
  }
  return rc;
}

void cw_notify_blocked(cw_t *cw, int blocked)
{
  if (!cw->is_worker || cw->raylet_fd < 0)
    return;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_TASK_BLOCKED;
  m.task_blocked = blocked != 0;
  pthread_mutex_lock(&cw_proc.send_mu);
  (void)frame_send_msg(cw->raylet_fd, &m.base, -1);
  pthread_mutex_unlock(&cw_proc.send_mu);
}
