/*
 * Executing tasks in a worker: the registry of task functions (filled by RAYC_REMOTE
 * constructors when the job's libraries are dlopen'ed), the CoreWorkerService handler that
 * queues pushed tasks, and the executor that runs them on the worker's main thread and builds
 * their replies (a task's calls on its context are in cw_task_ctx.c).
 *
 * Results up to CW_INLINE_MAX travel back inline in the reply; larger ones are created directly
 * in the node's store (rayc_return_alloc hands the task a pointer into shared memory) and sealed
 * when the task returns, so a large result is written exactly once.
 */
#include "worker/cw.h"
#include "worker/cw_events.h"
#include "worker/cw_proc.h"
#include "worker/cw_task_ctx.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the function registry (process-wide: constructors run before any core worker exists) ---- */

void rayc_register_function(const char *name, rayc_task_fn fn)
{
  pthread_mutex_lock(&cw_proc.tasks_mu);
  if (!cw_proc.tasks.buckets)
    hmap_init(&cw_proc.tasks);
  hmap_put(&cw_proc.tasks, name, strlen(name), (void *)(uintptr_t)fn);
  pthread_mutex_unlock(&cw_proc.tasks_mu);
}

rayc_task_fn cw_exec_lookup(const char *name)
{
  pthread_mutex_lock(&cw_proc.tasks_mu);
  void *p = cw_proc.tasks.buckets ? hmap_get(&cw_proc.tasks, name, strlen(name)) : NULL;
  pthread_mutex_unlock(&cw_proc.tasks_mu);
  return (rayc_task_fn)(uintptr_t)p;
}

static int load_one(const char *path)
{
  if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL)) {
    log_error("cannot load %s: %s", path, dlerror());
    return RAYC_EIO;
  }
  log_info("loaded %s", path);
  return 0;
}

static int load_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return RAYC_EIO;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 3 && strcmp(e->d_name + n - 3, ".so") == 0) {
      char *p = xasprintf("%s/%s", dir, e->d_name);
      rc |= load_one(p);
      free(p);
    }
  }
  closedir(d);
  return rc;
}

int cw_exec_load_code(const char *code_path)
{
  char *copy = xstrdup(code_path ? code_path : ""), *save = NULL;
  int rc = 0;
  for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
    struct stat st;
    if (stat(p, &st) != 0) {
      log_error("code path entry %s does not exist", p);
      rc = RAYC_ENOT_FOUND;
    } else if (S_ISDIR(st.st_mode)) {
      rc |= load_dir(p);
    } else {
      rc |= load_one(p);
    }
  }
  free(copy);
  return rc;
}

/* ---- the executor ---- */

static void h_push_task(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  const Rayc__PushTaskRequest *req = (const Rayc__PushTaskRequest *)m;
  if (req->task && req->task->type != RAYC__TASK_TYPE__NORMAL_TASK) {
    if (req->task->type == RAYC__TASK_TYPE__ACTOR_TASK)
      cw_exec_count_push(1);
    cw_actor_push(ctx, call, req);
    return;
  }
  cw_exec_item_t *it = xmalloc(sizeof(*it));
  it->next = NULL;
  it->to = (cw_exec_to_t){.call = call};
  it->req = (const Rayc__PushTaskRequest *)m;
  pthread_mutex_lock(&cw_proc.exec.mu);
  if (cw_proc.exec.stop) {
    pthread_mutex_unlock(&cw_proc.exec.mu);
    free(it);
    rpc_reply_error(call, RAYC_EUNAVAILABLE, "the worker is exiting");
    return;
  }
  cw_lease_note_owner(req->task);
  cw_proc.exec.push_calls++, cw_proc.exec.push_tasks++;
  if (cw_proc.exec.tail)
    cw_proc.exec.tail->next = it;
  else
    cw_proc.exec.head = it;
  cw_proc.exec.tail = it;
  pthread_mutex_unlock(&cw_proc.exec.mu);
  pthread_cond_signal(&cw_proc.exec.cv); /* after the unlock: woken, the executor takes the lock at once */
}

static Rayc__ErrorInfo *exec_error(cw_t *cw, const Rayc__TaskSpec *spec, int code, const char *msg);
static void exec_reply(cw_t *, const cw_exec_to_t *, Rayc__ReturnObject *, size_t, int64_t, int64_t);

/* Answers a queued task's PushTask with CANCELLED for every result, without running it. */
static void exec_reply_cancelled(cw_t *cw, const cw_exec_to_t *to, const Rayc__TaskSpec *spec)
{
  size_t n = spec->num_returns > 0 ? (size_t)spec->num_returns : 1;
  Rayc__ReturnObject *rets = xcalloc(n, sizeof(*rets));
  id_object_t *ids = xcalloc(n, sizeof(*ids));
  id_task_t tid;
  memcpy(tid.b, spec->task_id.data, ID_TASK_SIZE);
  for (size_t i = 0; i < n; i++) {
    rayc__return_object__init(&rets[i]);
    ids[i] = id_object_for_task(tid, (uint32_t)i + 1);
    rets[i].object_id = pb_bytes(ids[i].b, ID_OBJECT_SIZE);
    rets[i].error = exec_error(cw, spec, RAYC_ECANCELLED, "the task was cancelled before it ran");
  }
  exec_reply(cw, to, rets, n, 0, 0);
  for (size_t i = 0; i < n; i++) {
    free(rets[i].error->message);
    free(rets[i].error->function_name);
    free(rets[i].error);
  }
  free(rets);
  free(ids);
}

/* Takes the queued task with this id out of the queue, or returns NULL. cw_proc.exec.mu held. */
static cw_exec_item_t *exec_unqueue(const ProtobufCBinaryData *task_id)
{
  cw_exec_item_t *prev = NULL;
  for (cw_exec_item_t *it = cw_proc.exec.head; it; prev = it, it = it->next) {
    const Rayc__TaskSpec *spec = it->req->task;
    if (!spec || spec->task_id.len != task_id->len || memcmp(spec->task_id.data, task_id->data, task_id->len) != 0)
      continue;
    if (prev)
      prev->next = it->next;
    else
      cw_proc.exec.head = it->next;
    if (cw_proc.exec.tail == it)
      cw_proc.exec.tail = prev;
    return it;
  }
  return NULL;
}

static void h_cancel_task(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__CancelTaskRequest *req = (const Rayc__CancelTaskRequest *)m;
  Rayc__CancelTaskReply rep = RAYC__CANCEL_TASK_REPLY__INIT;
  if (req->task_id.len != ID_TASK_SIZE) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "task_id must be %d bytes", ID_TASK_SIZE);
    return;
  }
  pthread_mutex_lock(&cw_proc.exec.mu);
  cw_exec_item_t *queued = exec_unqueue(&req->task_id);
  rayc_task_ctx *run = cw_proc.exec.running;
  int running = !queued && run && memcmp(run->spec->task_id.data, req->task_id.data, ID_TASK_SIZE) == 0;
  rayc_executor ex;
  if (running)
    __atomic_store_n(&run->cancelled, 1, __ATOMIC_RELEASE);
  if (running && !req->force && cw_lang_executor(&ex) && ex.cancel)
    ex.cancel(ex.data, run); /* still running: cw_proc.exec.mu keeps it */
  pthread_mutex_unlock(&cw_proc.exec.mu);
  int actor_call = !queued && !running && cw_actor_cancel_queued(&req->task_id); /* answered CANCELLED in turn */
  rep.attempted = queued || running || actor_call;
  if (queued) {
    exec_reply_cancelled(cw, &queued->to, queued->req->task);
    free(queued);
  }
  if (running && req->recursive) {
    pthread_mutex_lock(&cw->mu);
    cw_cancel_children(cw, (const id_task_t *)req->task_id.data, req->force);
    pthread_mutex_unlock(&cw->mu);
  }
  rpc_reply(call, &rep.base);
  if (running && req->force) {
    /* The owner sees its PushTask fail (CANCELLED); the children's cancels go out before we exit. */
    cw_cancel_drain(req->recursive ? 2000 : 0);
    log_warn("force-cancelled while running %s: exiting", run->spec->function_name);
    _exit(1);
  }
}

/* The rows every process serves, worker or driver: it owns objects others borrow and streams it reads. */
// clang-format off
#define CW_OWNER_ROWS                                                                                         \
  {.service = &rayc__core_worker_service__descriptor, .method = "AddBorrower",                              \
   .handler = cw_on_add_borrower, .required = "borrower object_ids"},                                       \
  {.service = &rayc__core_worker_service__descriptor, .method = "RemoveBorrower",                           \
   .handler = cw_on_remove_borrower, .required = "object_ids"},                                             \
  {.service = &rayc__core_worker_service__descriptor, .method = "GetObjectStatus",                          \
   .handler = cw_on_get_object_status, .required = "object_ids"},                                           \
  {.service = &rayc__core_worker_service__descriptor, .method = "ReportGeneratorItem",                      \
   .handler = cw_on_report_generator_item, .required = "task_id item"},                                     \
  {.service = &rayc__core_worker_service__descriptor, .method = "LeaseWanted",                              \
   .handler = cw_on_lease_wanted, .required = "worker_id"}
// clang-format on

static const rpc_method_t cw_methods[] = {
    {.service = &rayc__core_worker_service__descriptor,
     .method = "PushTask",
     .handler = h_push_task,
     .required = "task task.task_id task.job_id task.function_name"},
    {.service = &rayc__core_worker_service__descriptor,
     .method = "CancelTask",
     .handler = h_cancel_task,
     .required = "task_id"},
    {.service = &rayc__core_worker_service__descriptor,
     .method = "PushTasks",
     .handler = cw_exec_on_push_tasks,
     .required = "tasks tasks.task_id tasks.job_id tasks.function_name"},
    CW_OWNER_ROWS,
    {.service = &rayc__actor_worker_service__descriptor,
     .method = "WaitActorExit",
     .handler = cw_actor_on_wait_exit,
     .required = "actor_id"},
    {.service = &rayc__actor_worker_service__descriptor,
     .method = "KillActorWorker",
     .handler = cw_actor_on_kill,
     .required = "actor_id"},
    {.service = &rayc__actor_worker_service__descriptor,
     .method = "WaitOwnerExit",
     .handler = cw_actor_on_wait_owner,
     .required = "owner_worker_id"},
};

static void h_driver_no_tasks(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx, (void)m;
  rpc_reply_error(call, RAYC_EUNIMPLEMENTED, "this process is a driver: it runs no tasks");
}

/* A driver's server: borrowing, and WaitOwnerExit (the GCS, for the actors it owns; owners of refs
 * it borrows, to learn when it exits). */
static const rpc_method_t cw_driver_methods[] = {
    {.service = &rayc__core_worker_service__descriptor, .method = "PushTask", .handler = h_driver_no_tasks},
    {.service = &rayc__core_worker_service__descriptor, .method = "CancelTask", .handler = h_driver_no_tasks},
    {.service = &rayc__core_worker_service__descriptor, .method = "PushTasks", .handler = h_driver_no_tasks},
    CW_OWNER_ROWS,
    {.service = &rayc__actor_worker_service__descriptor,
     .method = "WaitOwnerExit",
     .handler = cw_actor_on_wait_owner,
     .required = "owner_worker_id"},
};

const rpc_method_t *cw_service_methods(int driver, size_t *n)
{
  *n = driver ? ARRAY_LEN(cw_driver_methods) : ARRAY_LEN(cw_methods);
  return driver ? cw_driver_methods : cw_methods;
}

static int cw_serve(cw_t *cw, const rpc_method_t *methods, size_t n, int non_polling)
{
  rpc_server_opts_t opts = {.loop = NULL, .token = cw->token, .ctx = cw, .tls = &cw->tls, .non_polling = non_polling};
  cw->server = rpc_server_create(methods, n, &opts);
  if (!cw->server)
    return RAYC_EINTERNAL;
  int port = rpc_server_listen_range(cw->server, cw->node_ip, cw->min_port, cw->max_port);
  if (port <= 0)
    return port < 0 ? port : RAYC_EIO;
  cw->port = port;
  return rpc_server_start(cw->server);
}

int cw_worker_serve(cw_t *cw)
{
  return cw_serve(cw, cw_methods, ARRAY_LEN(cw_methods), 0);
}

int cw_driver_serve(cw_t *cw)
{
  cw_actor_owner_reset();
  int one_poller = rpc_client_poll(cw->client) == 0;
  cw->get_lend = one_poller && !getenv("RAYC_GET_NO_LEND"); /* getters borrow the client's queue (cw_get_poll.c) */
  int rc = cw_serve(cw, cw_driver_methods, ARRAY_LEN(cw_driver_methods), one_poller);
  if (rc != 0)
    cw_set_error(rc, "cannot start the driver's CoreWorkerService on %s: %s", cw->node_ip, rayc_strerror(rc));
  return rc;
}

/* Resolves the task's arguments into bufs (each with a priv when it holds anything: a store
 * object, a copied value, contained refs; release with rayc_buf_release). Refs the owner located
 * are read from this node's store (pulled first from another node); borrowed refs, which come
 * without a location, through their owner. */
static int exec_args(cw_t *cw, const Rayc__TaskSpec *spec, rayc_buf *bufs, char **why)
{
  for (size_t i = 0; i < spec->n_args; i++) {
    const Rayc__TaskArg *a = spec->args[i];
    char hex[9];
    int rc = 0;
    if (a->kind_case == RAYC__TASK_ARG__KIND_VALUE) {
      bufs[i] = (rayc_buf){.data = a->value.data, .len = a->value.len};
    } else if (a->kind_case != RAYC__TASK_ARG__KIND_REF || !a->ref || a->ref->object_id.len != ID_OBJECT_SIZE) {
      *why = xasprintf("argument %zu is malformed", i);
      return RAYC_EINVALID_ARGUMENT;
    } else if (a->ref->node_id.len == ID_NODE_SIZE) {
      int remote = memcmp(a->ref->node_id.data, cw->node_id.b, ID_NODE_SIZE) != 0;
      rc = cw_buf_from_store(cw, a->ref->object_id.data, remote, a->ref->store_address, 30000, &bufs[i]);
    } else {
      /* a borrowed ref: the submitter holds it until our reply, so its owner keeps it */
      rayc_ref r;
      memcpy(r.id, a->ref->object_id.data, ID_OBJECT_SIZE);
      pthread_mutex_lock(&cw->mu);
      cw_object_t *o = cw_ref_entry(cw, (const id_object_t *)r.id, cw_peer_get(cw, a->ref->owner));
      if (o)
        o->local_refs++;
      pthread_mutex_unlock(&cw->mu);
      rc = o ? cw_get(cw, &r, 1, -1, &bufs[i], 0)
             : cw_set_error(RAYC_EOBJECT_LOST, "it names no owner, or this process as owner but it is gone");
      if (o) {
        pthread_mutex_lock(&cw->mu);
        cw_obj_unref(cw, o);
        pthread_mutex_unlock(&cw->mu);
      }
    }
    if (rc != 0) {
      *why = xasprintf("argument %zu (object %s) is not available here: %s", i,
                       id_short(a->ref->object_id.data, ID_OBJECT_SIZE, hex), rayc_last_error());
      return rc;
    }
    if (a->n_nested_refs) {
      cw_nested_t *v = NULL;
      size_t nv = 0;
      pthread_mutex_lock(&cw->mu);
      rc = cw_nested_parse(cw, a->nested_refs, a->n_nested_refs, CW_HOLD_NONE, &v, &nv);
      if (rc == 0)
        cw_buf_set_refs(cw, &bufs[i], v, nv);
      pthread_mutex_unlock(&cw->mu);
      free(v);
      if (rc != 0) {
        *why = xasprintf("argument %zu carries malformed refs", i);
        return rc;
      }
    }
  }
  return 0;
}

/* Before the reply (while the submitter still holds the arguments): registers this worker with
 * the owners of the argument refs the task kept (rayc_ref_retain, or inside objects it holds). */
static void exec_register_kept(cw_t *cw, rayc_buf *bufs, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += bufs[i].priv ? ((cw_buf_priv_t *)bufs[i].priv)->nrefs : 0;
  if (total == 0)
    return;
  cw_object_t **kept = xmalloc(total * sizeof(*kept));
  size_t nk = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < n; i++) { /* the arguments' own holds of each entry */
    cw_buf_priv_t *p = bufs[i].priv;
    for (size_t k = 0; p && k < p->nrefs; k++)
      if (p->objs[k])
        p->objs[k]->scratch++;
  }
  for (size_t i = 0; i < n; i++) {
    cw_buf_priv_t *p = bufs[i].priv;
    for (size_t k = 0; p && k < p->nrefs; k++) {
      cw_object_t *o = p->objs[k];
      if (!o || o->scratch <= 0)
        continue;
      int64_t holds = (int64_t)o->local_refs + o->submitted_refs + o->contained;
      if (o->owner && !o->registered && holds > o->scratch)
        kept[nk++] = o;
      o->scratch = 0;
    }
  }
  if (nk)
    cw_borrow_register(cw, kept, nk, NULL);
  pthread_mutex_unlock(&cw->mu);
  free(kept);
}

/* Sets CUDA_VISIBLE_DEVICES to the GPUs of the task's lease (unset when it has none), as Ray does. */
static void exec_set_gpus(const Rayc__TaskSpec *spec)
{
  if (spec->n_gpu_ids == 0) {
    if (getenv("CUDA_VISIBLE_DEVICES")) /* unsetenv rewrites the environment: ~50 compares a task */
      unsetenv("CUDA_VISIBLE_DEVICES");
    return;
  }
  char buf[256];
  size_t off = 0;
  for (size_t i = 0; i < spec->n_gpu_ids && off < sizeof(buf) - 12; i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d", i ? "," : "", (int)spec->gpu_ids[i]);
  setenv("CUDA_VISIBLE_DEVICES", buf, 1);
}

static Rayc__ErrorInfo *exec_error(cw_t *cw, const Rayc__TaskSpec *spec, int code, const char *msg)
{
  Rayc__ErrorInfo *e = xmalloc(sizeof(*e));
  rayc__error_info__init(e);
  e->code = code;
  e->message = xstrdup(msg);
  e->function_name = xstrdup(spec->function_name);
  e->node_id = pb_bytes(cw->node_id.b, ID_NODE_SIZE);
  e->worker_id = pb_bytes(cw->worker_id.b, ID_WORKER_SIZE);
  return e;
}

/* Turns result i into a ReturnObject: sealed in the store, or inline. */
static void exec_finish_return(rayc_task_ctx *ctx, size_t i, Rayc__ReturnObject *r, id_object_t *id)
{
  cw_t *cw = ctx->cw;
  *id = cw_ctx_return_id(ctx, i);
  r->object_id = pb_bytes(id->b, ID_OBJECT_SIZE);
  rayc_buf *b = &ctx->rets[i];
  if (ctx->kind[i] == RET_NONE && b->data && b->len > CW_INLINE_MAX) {
    /* set by the task itself to memory it keeps: copy it into the store */
    if (store_client_put(cw->store, id->b, b->data, b->len, NULL, 0, 10000) == 0)
      ctx->kind[i] = RET_STORE;
  } else if (ctx->kind[i] == RET_STORE) {
    store_client_seal(cw->store, id->b);
    store_client_release(cw->store, id->b);
  }
  if (ctx->kind[i] == RET_STORE) {
    r->in_store = 1;
    r->node_id = pb_bytes(cw->node_id.b, ID_NODE_SIZE);
    r->store_address = cw->store_address;
    r->size = b->len;
  } else {
    r->data = pb_bytes(b->data, b->data ? b->len : 0);
  }
}

static void exec_reply(cw_t *cw, const cw_exec_to_t *to, Rayc__ReturnObject *rets, size_t n, int64_t start_us,
                       int64_t end_us)
{
  Rayc__PushTaskReply rep = RAYC__PUSH_TASK_REPLY__INIT;
  Rayc__ReturnObject **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
  for (size_t i = 0; i < n; i++)
    ptrs[i] = &rets[i];
  rep.returns = ptrs;
  rep.n_returns = n;
  /* the node drains: the owner pushes no more tasks here and returns the lease */
  rep.worker_exiting = __atomic_load_n(&cw->node_draining, __ATOMIC_RELAXED);
  rep.lease_wanted = __atomic_exchange_n(&cw->lease_wanted, 0, __ATOMIC_RELAXED);
  rep.start_us = start_us; /* the owner reports the task's RUNNING and end events with these */
  rep.end_us = end_us;
  rep.worker_pid = (int32_t)cw->pid;
  cw_exec_send(to, &rep, 0, NULL);
  free(ptrs);
}

/* Runs fn (or body, when given: an actor's constructor or method) and fills rets; returns the
 * error to report for every result, or NULL. */
static char *exec_call(cw_t *cw, rayc_task_ctx *ctx, const Rayc__TaskSpec *spec, cw_exec_body_fn body, void *arg,
                       int *code)
{
  rayc_task_fn fn = body ? NULL : cw_exec_lookup(spec->function_name);
  rayc_executor ex;
  int use_ex = !fn && !body && cw_lang_executor(&ex) && ex.task;
  if (!fn && !body && !use_ex) {
    *code = RAYC_ETASK_FAILED;
    return xasprintf("function '%s' is not registered by any library on the code path '%s'", spec->function_name,
                     cw->code_path ? cw->code_path : "");
  }
  rayc_buf *args = xcalloc(spec->n_args ? spec->n_args : 1, sizeof(*args));
  char *why = NULL;
  int rc = exec_args(cw, spec, args, &why);
  int args_rc = rc;
  if (rc == 0) {
    id_task_t saved = cw->current_task;
    memcpy(cw->current_task.b, spec->task_id.data, ID_TASK_SIZE);
    if (!body) /* normal tasks run one at a time on the main thread: the environment is ours */
      exec_set_gpus(spec);
    if (body)
      rc = body(arg, ctx, args, spec->n_args, ctx->nrets);
    else if (fn)
      rc = fn(ctx, args, spec->n_args, ctx->nrets);
    else
      rc = ex.task(ex.data, ctx, spec->function_name, args, spec->n_args, ctx->nrets);
    cw->current_task = saved;
    if (rc != 0)
      why = ctx->error ? xstrdup(ctx->error) : xasprintf("the task returned %d (%s)", rc, rayc_strerror(rc));
  }
  exec_register_kept(cw, args, spec->n_args);
  rayc_buf_release(args, spec->n_args);
  free(args);
  /* an argument's owner died; or a method of an actor killed meanwhile on a host (cw_actor_host.c) */
  *code = args_rc == RAYC_EOWNER_DIED ? args_rc : rc == RAYC_EACTOR_DIED && body ? rc : RAYC_ETASK_FAILED;
  return why;
}

/* Before the reply: registers the caller, who will own the results, as a borrower of the refs
 * they contain (with their owners: this process for the objects the task created), and builds
 * them as messages into nested[i]. */
static void exec_register_results(cw_t *cw, rayc_task_ctx *ctx, const Rayc__Address *caller, cw_nested_msg_t *nested)
{
  size_t total = 0;
  for (size_t i = 0; i < ctx->nrets; i++)
    total += ctx->ret_nrefs[i];
  if (total == 0)
    return;
  cw_object_t **objs = xmalloc(total * sizeof(*objs));
  size_t k = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < ctx->nrets; i++) {
    for (size_t j = 0; j < ctx->ret_nrefs[i]; j++)
      objs[k++] = ctx->ret_refs[i][j].obj;
    cw_nested_msg_build(cw, ctx->ret_refs[i], ctx->ret_nrefs[i], &nested[i]);
  }
  cw_borrow_register(cw, objs, k, caller);
  pthread_mutex_unlock(&cw->mu);
  free(objs);
}

static void exec_task(cw_t *cw, const cw_exec_to_t *to, const Rayc__PushTaskRequest *req, cw_exec_body_fn body,
                      void *arg)
{
  const Rayc__TaskSpec *spec = req->task;
  if (!cw_exec_spec_ok(spec)) {
    cw_exec_send(to, NULL, RAYC_EINVALID_ARGUMENT, "malformed task spec");
    return;
  }
  size_t n = (size_t)spec->num_returns;
  rayc_task_ctx ctx = {.cw = cw,
                       .spec = spec,
                       .rets = xcalloc(n, sizeof(rayc_buf)),
                       .nrets = n,
                       .kind = xcalloc(n, 1),
                       .ret_refs = xcalloc(n, sizeof(cw_nested_t *)),
                       .ret_nrefs = xcalloc(n, sizeof(size_t))};
  int code = 0;
  const char *name = spec->name[0] ? spec->name : spec->function_name;
  const uint8_t *actor = spec->actor_id.len == ID_ACTOR_SIZE ? spec->actor_id.data : NULL;
  int own_events = spec->type != RAYC__TASK_TYPE__NORMAL_TASK; /* normal tasks: the owner reports */
  int64_t start_us = cw_events_now_us();
  if (own_events)
    cw_event_record(cw, spec->task_id.data, spec->attempt, name, spec->type, actor, RAYC__TASK_STATUS__RUNNING, NULL,
                    1);
  pthread_mutex_lock(&cw_proc.exec.mu);
  cw_proc.exec.running = &ctx;
  pthread_mutex_unlock(&cw_proc.exec.mu);
  char *err = exec_call(cw, &ctx, spec, body, arg, &code);
  int64_t end_us = cw_events_now_us();
  if (own_events)
    cw_event_record(cw, spec->task_id.data, spec->attempt, name, spec->type, actor,
                    err ? RAYC__TASK_STATUS__FAILED : RAYC__TASK_STATUS__FINISHED, err, 1);
  pthread_mutex_lock(&cw_proc.exec.mu);
  cw_proc.exec.running = NULL;
  pthread_mutex_unlock(&cw_proc.exec.mu);
  if (rayc_task_cancelled(&ctx)) { /* a partial result of a cancelled task is not its result */
    char *why = err ? xasprintf("the task was cancelled while running (%s)", err)
                    : xstrdup("the task was cancelled while running and returned early");
    free(err);
    err = why;
    code = RAYC_ECANCELLED;
  }
  Rayc__ReturnObject *rets = xcalloc(n, sizeof(*rets));
  id_object_t *ids = xcalloc(n, sizeof(*ids));
  cw_nested_msg_t *nested = xcalloc(n, sizeof(*nested));
  if (!err && spec->streaming) { /* the generator object: how many items the task yielded */
    uint64_t count = ctx.nyielded;
    cw_ctx_drop_ret_refs(&ctx);
    rayc_return_copy(&ctx, 0, &count, sizeof(count));
  }
  if (err)
    cw_ctx_drop_ret_refs(&ctx);
  else
    exec_register_results(cw, &ctx, spec->caller, nested);
  for (size_t i = 0; i < n; i++) {
    rayc__return_object__init(&rets[i]);
    if (err) {
      cw_ctx_drop_return(&ctx, i);
      ids[i] = cw_ctx_return_id(&ctx, i);
      rets[i].object_id = pb_bytes(ids[i].b, ID_OBJECT_SIZE);
      rets[i].error = exec_error(cw, spec, code, err);
    } else {
      exec_finish_return(&ctx, i, &rets[i], &ids[i]);
      rets[i].nested_refs = nested[i].groups;
      rets[i].n_nested_refs = nested[i].n;
    }
  }
  exec_reply(cw, to, rets, n, start_us, end_us);
  cw_ctx_drop_ret_refs(&ctx); /* the caller is registered with their owners by now */
  for (size_t i = 0; i < n; i++)
    cw_nested_msg_free(&nested[i]);
  free(nested);
  free(ctx.ret_refs);
  free(ctx.ret_nrefs);
  for (size_t i = 0; i < n; i++) {
    if (ctx.kind[i] == RET_HEAP)
      free((void *)ctx.rets[i].data);
    if (rets[i].error) {
      free(rets[i].error->message);
      free(rets[i].error->function_name);
      free(rets[i].error);
    }
  }
  free(rets);
  free(ids);
  free(ctx.rets);
  free(ctx.kind);
  free(ctx.error);
  free(err);
}

void cw_exec_run(cw_t *cw, const cw_exec_to_t *to, const Rayc__PushTaskRequest *req, cw_exec_body_fn body, void *arg)
{
  exec_task(cw, to, req, body, arg);
}

void cw_exec_run_cancelled(cw_t *cw, const cw_exec_to_t *to, const Rayc__TaskSpec *spec)
{
  if (!cw_exec_spec_ok(spec))
    cw_exec_send(to, NULL, RAYC_EINVALID_ARGUMENT, "malformed task spec");
  else
    exec_reply_cancelled(cw, to, spec);
}

void cw_worker_run(cw_t *cw)
{
  for (;;) {
    pthread_mutex_lock(&cw_proc.exec.mu);
    while (!cw_proc.exec.head && !cw_proc.exec.stop)
      pthread_cond_wait(&cw_proc.exec.cv, &cw_proc.exec.mu);
    cw_exec_item_t *it = cw_proc.exec.head;
    if (!it) {
      pthread_mutex_unlock(&cw_proc.exec.mu);
      cw_actor_stop(cw);
      return;
    }
    cw_proc.exec.head = it->next;
    if (!cw_proc.exec.head)
      cw_proc.exec.tail = NULL;
    int stop = cw_proc.exec.stop;
    pthread_mutex_unlock(&cw_proc.exec.mu);
    if (stop)
      cw_exec_send(&it->to, NULL, RAYC_EUNAVAILABLE, "the worker is exiting");
    else
      exec_task(cw, &it->to, it->req, NULL, NULL);
    free(it);
  }
}

void cw_worker_stop(cw_t *cw)
{
  (void)cw;
  pthread_mutex_lock(&cw_proc.exec.mu);
  cw_proc.exec.stop = 1;
  pthread_cond_broadcast(&cw_proc.exec.cv);
  pthread_mutex_unlock(&cw_proc.exec.mu);
}
