/*
 * Actors inside the core worker: what cw_actor.c (hosting an actor, and serving the GCS as an
 * actor's owner) and cw_actor_submit.c (calling actors) share.
 */
#ifndef RAYC_CW_ACTOR_H
#define RAYC_CW_ACTOR_H

#include "worker/cw.h"
#include "worker/cw_proc.h"

enum {
  CW_ACTOR_MAX_IN_FLIGHT = 512, /* calls pushed to one actor at once by one caller */
  CW_ACTOR_POLL_MS = 30000,     /* how long the GCS holds a GetActorInfo long poll */
  CW_ACTOR_GCS_RETRY_MS = 200,  /* a failed long poll is tried again after this long */
};

/* Fills a with the address the GCS long-polls (WaitOwnerExit) to learn that this process, the
 * owner of actors it creates, has exited: its CoreWorkerService port (workers and drivers). ip
 * points into cw. 0 or an error. Any thread, cw->mu not held. */
int cw_actor_owner_address(cw_t *cw, Rayc__Address *a);

/* A driver leaves: answers the held WaitOwnerExit calls (so the GCS kills the actors this process
 * owned, and owners drop its borrowings). Idempotent. */
void cw_actor_owner_release(cw_t *cw);

/* cw_actor_submit.c. The GCS channel for a synchronous call, or NULL with the error set; takes
 * cw->mu. */
rpc_channel_t *cw_actors_gcs(cw_t *cw);
/* Starts following actor id's state (so its address is known before the first call). version > 0:
 * the GCS said the actor is PENDING_CREATION at that version (it was just registered), so the
 * first long poll waits for the next change instead of asking for the state first. */
void cw_actors_watch(cw_t *cw, const uint8_t *id, uint64_t version);
/* This process killed actor id: its old address is not to be used (so calls made after
 * rayc_actor_kill returns go to the restarted actor, or fail). */
void cw_actors_killed(cw_t *cw, const uint8_t *id);

/* cw_actor.c: the class registry. The class cls if a library registered it with a constructor,
 * else NULL; a method of c, or NULL. Any thread (classes_mu). */
cw_actor_class_t *cw_actor_class_find(const char *cls);
rayc_method_fn cw_actor_method_find(cw_actor_class_t *c, const char *method);
/* Appends call to l (stamped now); l's lock held by the caller. */
void cw_call_list_add(cw_call_list_t *l, rpc_call_t *call);
/* Answers every call of l with an empty reply and empties it. */
void cw_call_list_reply_all(cw_call_list_t *l);

/* cw_actor.c. Returns a new string: "HOST:PORT" of the cluster's GCS as this process knows it, or NULL. */
char *cw_actor_gcs_address(cw_t *cw);

#endif
