/*
 * rayc status: asks the cluster's GCS for its nodes and prints them with their resources, in the
 * shape of Ray's `ray status` ("Node status", then "Resources").
 *
 * The GCS is found at --address, else $RAYC_ADDRESS, else in <temp-dir>/session_latest/address
 * (written by `rayc start`).
 */
#include "client/cli/cli.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cli_status_conf {
  char *address;
  char *temp_dir;
  int timeout_ms;
  cli_sec_t sec;
} cli_status_conf_t;

#define F(field) offsetof(cli_status_conf_t, field)
static const cfg_entry_t cli_status_table[] = {
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the GCS (unset: <temp-dir>/session_latest/address)"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
    {"timeout-ms", CFG_INT, F(timeout_ms), "5000", "how long to wait for the GCS"},
    CLI_SEC_SETTINGS(cli_status_conf_t, sec),
};
#undef F

static const char cli_status_summary[] =
    "Shows the cluster's nodes, their resources, and the demands no node can meet.";

/* One resource summed over the alive nodes; name borrowed from the reply. */
typedef struct cli_res {
  const char *name;
  double total, avail;
} cli_res_t;

static int cli_res_is_bytes(const char *name)
{
  return strcmp(name, "memory") == 0 || strcmp(name, "object_store_memory") == 0;
}

/* Formats an amount: bytes for memory resources ("1.50GiB"), else a number ("2.0", "0.25"). */
static const char *cli_fmt(const char *name, double v, char *buf, size_t len)
{
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (cli_res_is_bytes(name)) {
    size_t u = 0;
    for (; fabs(v) >= 1024 && u + 1 < ARRAY_LEN(units); u++)
      v /= 1024;
    snprintf(buf, len, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  } else {
    snprintf(buf, len, v == floor(v) ? "%.1f" : "%g", v);
  }
  return buf;
}

static double cli_res_find(Rayc__ResourceEntry **v, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i]->name, name) == 0)
      return v[i]->amount;
  return 0;
}

/* Adds a node's total and available amounts into sums (names in first-seen order). */
static void cli_res_add(cli_res_t *sums, size_t *n, const Rayc__NodeInfo *node)
{
  for (size_t i = 0; i < node->n_resources_total; i++) {
    const char *name = node->resources_total[i]->name;
    size_t k = 0;
    while (k < *n && strcmp(sums[k].name, name) != 0)
      k++;
    if (k == *n)
      sums[(*n)++] = (cli_res_t){name, 0, 0};
    sums[k].total += node->resources_total[i]->amount;
    sums[k].avail += cli_res_find(node->resources_available, node->n_resources_available, name);
  }
}

static void cli_status_nodes(const Rayc__GetAllNodeInfoReply *r, int alive)
{
  int shown = 0;
  printf("%s:\n", alive ? "Alive" : "Dead");
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes[i];
    char hex[2 * ID_NODE_SIZE + 1] = "?";
    if ((n->state == RAYC__NODE_STATE__NODE_ALIVE) != alive)
      continue;
    if (n->node_id.len == ID_NODE_SIZE)
      id_hex(n->node_id.data, ID_NODE_SIZE, hex);
    printf(" %s  %s  %s%s%s%s%s\n", hex, n->ip, alive ? "ALIVE" : "DEAD", n->is_head ? " (head)" : "",
           alive && n->draining ? " (draining)" : "", alive ? "" : ": ", alive ? "" : n->death_reason);
    shown++;
  }
  if (!shown)
    printf(" (none)\n");
}

/* "Usage": each resource summed over the alive nodes, used/total. */
static void cli_status_usage(const Rayc__GetAllNodeInfoReply *r)
{
  size_t cap = 0, n = 0, shown = 0;
  for (size_t i = 0; i < r->n_nodes; i++)
    cap += r->nodes[i]->n_resources_total;
  cli_res_t *sums = xcalloc(cap, sizeof(*sums));
  char a[32], b[32];
  for (size_t i = 0; i < r->n_nodes; i++)
    if (r->nodes[i]->state == RAYC__NODE_STATE__NODE_ALIVE)
      cli_res_add(sums, &n, r->nodes[i]);
  printf("Usage (used/total, alive nodes):\n");
  for (size_t i = 0; i < n; i++) {
    if (sums[i].total <= 0 || strstr(sums[i].name, "_group_"))
      continue; /* like Ray: "0/0 GPU" says nothing; placement-group resources are shown by rayc list */
    printf(" %s/%s %s\n", cli_fmt(sums[i].name, sums[i].total - sums[i].avail, a, sizeof(a)),
           cli_fmt(sums[i].name, sums[i].total, b, sizeof(b)), sums[i].name);
    shown++;
  }
  if (!shown)
    printf(" (no resources)\n");
  free(sums);
}

/* "Per node": each alive node's resources, available/total. */
static void cli_status_per_node(const Rayc__GetAllNodeInfoReply *r)
{
  char a[32], b[32];
  int shown = 0;
  printf("Per node (available/total):\n");
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Rayc__NodeInfo *node = r->nodes[i];
    char id[9] = "?";
    if (node->state != RAYC__NODE_STATE__NODE_ALIVE)
      continue;
    if (node->node_id.len == ID_NODE_SIZE)
      id_short(node->node_id.data, ID_NODE_SIZE, id);
    printf(" %s %s:", id, node->ip);
    for (size_t k = 0, first = 1; k < node->n_resources_total; k++) {
      const Rayc__ResourceEntry *e = node->resources_total[k];
      if (strstr(e->name, "_group_")) /* placement-group bundles: rayc list placement-groups */
        continue;
      double avail = cli_res_find(node->resources_available, node->n_resources_available, e->name);
      printf("%s %s %s/%s", first ? "" : ",", e->name, cli_fmt(e->name, avail, a, sizeof(a)),
             cli_fmt(e->name, e->amount, b, sizeof(b)));
      first = 0;
    }
    printf("\n");
    shown++;
  }
  if (!shown)
    printf(" (none)\n");
}

/* "Demands": lease requests no node can run, by shape, as Ray's autoscaler status shows them:
 * {'CPU': 64.0}: 1+ pending tasks (infeasible). */
static void cli_status_demands(const Rayc__GetAllNodeInfoReply *r)
{
  printf("Demands:\n");
  for (size_t i = 0; i < r->n_infeasible_demands; i++) {
    const Rayc__ResourceDemand *d = r->infeasible_demands[i];
    printf(" {");
    for (size_t k = 0; k < d->n_shape; k++) {
      double v = d->shape[k]->amount;
      printf(v == floor(v) ? "%s'%s': %.1f" : "%s'%s': %g", k ? ", " : "", d->shape[k]->name, v);
    }
    printf("}: %d+ pending tasks (infeasible)\n", d->count); /* Ray's wording, also for 1 */
  }
  if (!r->n_infeasible_demands)
    printf(" (no resource demands)\n");
}

static void cli_status_print(const char *address, const Rayc__GetAllNodeInfoReply *r)
{
  char when[64];
  time_t t = time(NULL);
  size_t alive = 0;
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
  for (size_t i = 0; i < r->n_nodes; i++)
    alive += r->nodes[i]->state == RAYC__NODE_STATE__NODE_ALIVE;
  printf("======== Cluster status: %s ========\n", when);
  printf("GCS: %s (%zu node%s alive, %zu dead)\n\n", address, alive, alive == 1 ? "" : "s", r->n_nodes - alive);
  printf("Node status\n---------------------------------------------------------------\n");
  cli_status_nodes(r, 1);
  cli_status_nodes(r, 0);
  printf("\nResources\n---------------------------------------------------------------\n");
  cli_status_usage(r);
  printf("\n");
  cli_status_per_node(r);
  printf("\n");
  cli_status_demands(r);
}

int cli_status(int argc, char **argv)
{
  cli_status_conf_t c;
  int status = cli_parse("status", cli_status_summary, cli_status_table, ARRAY_LEN(cli_status_table), &c, sizeof(c),
                         argc, argv);
  if (status != CLI_CONTINUE)
    return status;
  char address[256], *detail = NULL;
  Rayc__GetAllNodeInfoReply *reply = NULL;
  cli_auth_t auth;
  if (cli_auth_init(&auth, &c.sec, c.temp_dir, "status") < 0) {
    status = CLI_FAIL;
  } else if (cli_find_address(c.address, c.temp_dir, address, sizeof(address)) < 0) {
    fprintf(stderr,
            "rayc status: no cluster found (no --address, no RAYC_ADDRESS, no "
            "%s/session_latest/address); start one with `rayc start --head`\n",
            c.temp_dir);
    status = CLI_FAIL;
  } else if ((status = cli_gcs_get_nodes(&auth, address, c.timeout_ms, &reply, &detail)) < 0) {
    fprintf(stderr, "rayc status: cannot query the GCS at %s: %s%s\n", address,
            detail && *detail ? detail : rayc_strerror(status),
            status == RAYC_EUNAVAILABLE
                ? " (is the cluster running? does it want TLS: --tls-cert, --tls-key, --tls-ca?)"
                : "");
    cli_auth_hint(stderr, &auth, status);
    status = CLI_FAIL;
  } else {
    cli_status_print(address, reply);
  }
  pb_free(reply);
  free(detail);
  cli_auth_release(&auth);
  cfg_release(cli_status_table, ARRAY_LEN(cli_status_table), &c);
  return status;
}
