/*
 * Resource sets: the one representation of named amounts (CPU, GPU, memory, custom resources and
 * placement-group bundle resources) used by the raylet, the GCS's placement and the core worker.
 *
 * A name is interned once into a small integer (res_id_t); a set is a dense array of (id, amount)
 * pairs, so fitting, adding and subtracting compare integers instead of strings and a set is one
 * flat struct that copies with `=` (no pointers, nothing to free). Amounts compare with a tolerance
 * of RES_EPS.
 *
 * The intern table is process-wide and append-only, as Ray's scheduling ResourceID table is: ids
 * mean nothing outside the process (the wire carries names), and a name, once interned, lives as
 * long as the process. It is thread-safe; everything else here works on sets the caller owns and
 * is not.
 */
#ifndef RAYC_COMMON_RES_H
#define RAYC_COMMON_RES_H

#include "proto/common.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* A node's set holds four names per resource and placement-group bundle (CPU_group_<i>_<pg>...):
 * 512 leave room for 100+ one-resource groups on a node, as Ray's benchmark places (at 128 a node
 * took ~30, and the GCS retried the rest forever). A set is 6 KB then: it lives in leases, lease
 * requests, scheduling classes and the view's nodes, never per task. */
enum { RES_MAX = 512, RES_NAME_MAX = 96 };

#define RES_EPS 1e-9

typedef uint32_t res_id_t;

typedef struct res_set {
  uint32_t n;
  res_id_t id[RES_MAX];
  double amt[RES_MAX];
} res_set_t;

/* Returns name's id, interning it on first use. name must be non-empty and shorter than
 * RES_NAME_MAX (longer names are cut there). */
res_id_t res_intern(const char *name);
/* Sets *id to name's id and returns 0, or returns -1 when name was never interned (nothing has it). */
int res_lookup(const char *name, res_id_t *id);
/* Returns the name interned as id (static storage: lives as long as the process). */
const char *res_name(res_id_t id);

/* Empties s. */
void res_clear(res_set_t *s);
/* Returns id's amount in s (0 when absent). */
double res_get(const res_set_t *s, res_id_t id);
/* Sets id's amount in s; returns 0, or -1 when s is full (RES_MAX names) and id is not in it. */
int res_put(res_set_t *s, res_id_t id, double amt);
/* Removes id from s (nothing when absent). */
void res_del(res_set_t *s, res_id_t id);
/* The same by name. res_get_name and res_del_name never intern. */
double res_get_name(const res_set_t *s, const char *name);
int res_put_name(res_set_t *s, const char *name, double amt);
void res_del_name(res_set_t *s, const char *name);

/* Returns whether every positive amount of req fits in avail. */
int res_fits(const res_set_t *avail, const res_set_t *req);
/* Returns whether scale copies of req fit in avail (scale >= 1). */
int res_fits_n(const res_set_t *avail, const res_set_t *req, double scale);
/* avail -= req, avail += req (names missing from avail are added; a full avail drops them). */
void res_sub(res_set_t *avail, const res_set_t *req);
void res_add(res_set_t *avail, const res_set_t *req);
/* Returns whether a and b hold the same amounts (absent = 0), within RES_EPS. */
int res_equal(const res_set_t *a, const res_set_t *b);

/* Fills s from protobuf entries (borrowed); entries without a name are skipped. Returns 0, or -1
 * when more than RES_MAX distinct names were given (the first RES_MAX are kept). */
int res_from_pb(res_set_t *s, Rayc__ResourceEntry *const *entries, size_t n);
/* Returns new protobuf entries for s (free with res_pb_free()); *n gets their count. */
Rayc__ResourceEntry **res_to_pb(const res_set_t *s, size_t *n);
void res_pb_free(Rayc__ResourceEntry **e, size_t n);
/* Parses {"name": amount, ...} (non-negative numbers, names shorter than RES_NAME_MAX) into s,
 * adding to what s holds. Returns 0, or RAYC_EINVALID_ARGUMENT leaving s unchanged. */
int res_parse_json(res_set_t *s, const char *json);
/* Writes "name=amount,..." to buf (len bytes, cut to fit); returns the length it wanted. */
int res_format(const res_set_t *s, char *buf, size_t len);

#endif
