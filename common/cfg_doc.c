/*
 * The settings tables written out as a documented YAML configuration file (cfg_print_defaults):
 * what `rayc-gcs --print-config` and the other daemons print, and what deploy/gen-config.sh
 * assembles into deploy/rayc.yaml, so the shipped /etc/rayc/rayc.yaml cannot drift from the code.
 */
#include "common/cfg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *cfg_doc_type(enum cfg_type t)
{
  switch (t) {
    case CFG_INT:
      return "integer";
    case CFG_INT64:
      return "size, K/M/G/T suffixes";
    case CFG_DOUBLE:
      return "number";
    case CFG_BOOL:
      return "true or false";
    default:
      return "string";
  }
}

/* "num-cpus" -> "RAYC_NUM_CPUS" into buf. */
static void cfg_doc_env(const char *name, char *buf, size_t len)
{
  size_t i = (size_t)snprintf(buf, len, "RAYC_");
  for (; *name && i + 1 < len; name++, i++)
    buf[i] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
  buf[i < len ? i : len - 1] = '\0';
}

/* A default as YAML text: strings that YAML would read as something else are quoted. */
static void cfg_doc_value(FILE *out, const cfg_entry_t *e)
{
  if (!e->def) {
    fputs(e->type == CFG_STRING ? "~" : "0", out);
    return;
  }
  int quote = e->type == CFG_STRING &&
              (!*e->def || strpbrk(e->def, ":#{}[],&*!|>'\"%@`") || isspace((unsigned char)e->def[0]));
  fprintf(out, quote ? "\"%s\"" : "%s", e->def);
}

void cfg_print_defaults(FILE *out, const cfg_entry_t *table, size_t n, const char *section)
{
  const char *ind = section ? "  " : "";
  if (section)
    fprintf(out, "%s:\n", section);
  for (size_t i = 0; i < n; i++) {
    const cfg_entry_t *e = &table[i];
    char env[128];
    cfg_doc_env(e->name, env, sizeof(env));
    fprintf(out, "%s# %s (%s; %s, --%s)\n%s#%s: ", ind, e->doc ? e->doc : e->name, cfg_doc_type(e->type), env, e->name,
            ind, e->name);
    cfg_doc_value(out, e);
    fputc('\n', out);
  }
}
