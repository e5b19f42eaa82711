/*
 * Internals shared by borrowing's two sides: cw_borrow.c (the borrower) and cw_borrow_owner.c (the
 * owner). Every function here runs under cw->mu; pointers are borrowed unless a comment says so.
 */
#ifndef RAYC_WORKER_CW_BORROW_INT_H
#define RAYC_WORKER_CW_BORROW_INT_H

#include "worker/cw.h"

enum { STATUS_MAX_IDS = 1 << 20, STATUS_SLACK_MS = 5000 };

struct cw_status_wait {
  cw_status_wait_t *next, *prev; /* cw->swaits */
  rpc_call_t *call;
  id_object_t *ids;
  size_t n;
  int npending;
  int state_only;
  int64_t deadline_ms; /* 0: none */
};

/* Returns whether a is this process's own address (a borrowed; NULL: no). */
int cw_addr_is_self(const cw_t *cw, const Rayc__Address *a);

/* Returns whether a is a usable worker address (id, ip, port). */
int cw_addr_ok(const Rayc__Address *a);

/* Returns the channel to p (borrowed from the client; made on first use). */
rpc_channel_t *cw_peer_ch(cw_t *cw, cw_peer_t *p);

/* Writes "worker <short id> at <ip:port>" for p to buf (len bytes) and returns buf. */
char *cw_peer_name(const cw_peer_t *p, char *buf, size_t len);

/* Records p as a borrower of the owned object o (one more registration), polling p for its exit. */
void cw_borrower_add(cw_t *cw, cw_object_t *o, cw_peer_t *p);

/* Marks p dead (why is logged) and drops every registration it held. */
void cw_peer_set_dead(cw_t *cw, cw_peer_t *p, const char *why);

/* Starts the WaitOwnerExit call that watches p, unless one is outstanding. */
void cw_peer_poll(cw_t *cw, cw_peer_t *p);

/* Takes sw off cw->swaits. */
void cw_swait_unlink(cw_t *cw, cw_status_wait_t *sw);

/* Frees sw (unlinked; its call already answered). */
void cw_swait_free(cw_status_wait_t *sw);

/* Answers sw's GetObjectStatus with what is ready now (its deadline passed) and frees it. */
void cw_swait_expire(cw_t *cw, cw_status_wait_t *sw);

#endif
