/*
 * Settings: one table per program (nginx-style, bound to struct fields by offsetof), from which
 * flags, RAYC_* environment variables, the YAML file and --help are all driven.
 *
 * Precedence: --flag > RAYC_<NAME> environment > YAML file (--config FILE or RAYC_CONFIG) >
 * the table's default. A name "num-cpus" is the flag --num-cpus (also --num-cpus=4), the variable
 * RAYC_NUM_CPUS, and the YAML key num_cpus or num-cpus.
 *
 * One YAML file serves every program of a cluster. Its top level is a mapping of shared settings
 * and of per-program sections, mappings named after a program (see CFG_PROGRAMS):
 *
 *     log-level: debug          # shared: every program that has the setting takes it
 *     gcs:                      # only rayc-gcs reads this section
 *       port: 6380
 *     raylet:
 *       num-cpus: 8
 *
 * A program ignores top-level keys it does not know (they belong to other programs) and skips
 * other programs' sections; inside its own section (named by cfg_set_program() or
 * cfg_load_section()) every key must be one of its settings, and its values override the top
 * level's. A mapping under a program's name at the top level is always a section, never a value.
 *
 * --config FILE (or RAYC_CONFIG) names the YAML file; the table needs no "config" entry (if it has a
 * CFG_STRING one, it receives the path too). A YAML mapping or list given for a CFG_STRING setting is
 * stored as JSON text: `resources: {GPU_A: 2}` equals --resources '{"GPU_A": 2}'. A YAML null
 * (`key:` or `key: ~`) and an empty environment variable leave the setting alone. A CFG_BOOL flag
 * also has a --no-NAME form; a bare --NAME never consumes the next argument.
 */
#ifndef RAYC_COMMON_CFG_H
#define RAYC_COMMON_CFG_H

#include <stddef.h>
#include <stdio.h>

enum cfg_type {
  CFG_INT,    /* int */
  CFG_INT64,  /* int64_t; accepts suffixes K, M, G, T (powers of 1024; also KB, KiB...) */
  CFG_DOUBLE, /* double (finite) */
  CFG_BOOL,   /* int 0/1: true/false/yes/no/1/0/on/off (any case); a bare flag means true */
  CFG_STRING, /* char *, owned by the struct (cfg_release frees) */
};

typedef struct cfg_entry {
  const char *name; /* "num-cpus" */
  enum cfg_type type;
  size_t offset;   /* offsetof(struct, field) */
  const char *def; /* default as text; NULL: zero / NULL string */
  const char *doc; /* one line for --help */
} cfg_entry_t;

enum { CFG_HELP = 1, CFG_PRINTED = 2 };

/* The section names a YAML file may hold, one per program: rayc-gcs, rayc-raylet, rayc-store,
 * rayc-worker (and librayc's workers) and the rayc CLI. */
#define CFG_PROGRAMS "gcs", "raylet", "store", "worker", "rayc", "dashboard"

/* Names the program whose YAML section cfg_load() applies ("raylet"). Call once at start-up,
 * before cfg_load(); program is borrowed and must stay valid (pass a string literal). Without it
 * (or with NULL) cfg_load() applies only the top level. Not thread-safe. */
void cfg_set_program(const char *program);

/* Fills conf (a struct the table describes) in precedence order. argv[0] is skipped; parsing stops
 * at the first argument that is not a flag or after "--", and *next (if not NULL) is set to its
 * index. Returns 0, CFG_HELP when --help/-h was given, CFG_PRINTED when --print-config was given
 * (and printed, see cfg_print_defaults), or RAYC_EINVALID_ARGUMENT with *err set
 * to a new message (free()) naming the bad flag, variable, key or value (unknown flags and keys of
 * the program's own YAML section are errors, naming the file, section and key; unknown top-level
 * YAML keys and RAYC_* variables are ignored, since other programs share them). Every
 * source is validated, even one a higher source overrides. *err is NULL unless an error is returned.
 * conf must start zeroed (or hold the strings of an earlier cfg_load, which are freed when
 * replaced); on CFG_HELP conf is untouched; after an error it holds valid strings for cfg_release.
 * Integers are decimal and strict: trailing text or overflow is an error. */
int cfg_load(const cfg_entry_t *table, size_t n, void *conf, int argc, char **argv, int *next, char **err);

/* cfg_load() reading the YAML section named section (borrowed; NULL: the top level only) instead of
 * the one cfg_set_program() named. */
int cfg_load_section(const cfg_entry_t *table, size_t n, void *conf, const char *section, int argc, char **argv,
                     int *next, char **err);

/* Prints "usage: prog [flags]", the summary (may be NULL) and one line per entry with its type,
 * doc, default and environment variable, then --config and --help. */
void cfg_usage(FILE *out, const char *prog, const char *summary, const cfg_entry_t *table, size_t n);

/* Prints the current values as YAML ("name: value" lines, strings quoted), e.g. for logs. */
void cfg_print(FILE *out, const cfg_entry_t *table, size_t n, const void *conf);

/* Prints the table as a commented YAML section for a configuration file: "section:" (NULL: no
 * header, keys at the top level), then for each entry its doc, type, environment variable and a
 * commented "#name: default" line (two-space indented under a section). `--print-config`, which
 * cfg_load() accepts from every program, prints this after loading every source (so a bad config
 * file is reported first) and returns CFG_PRINTED; deploy/rayc.yaml is made from it
 * (deploy/gen-config.sh). */
void cfg_print_defaults(FILE *out, const cfg_entry_t *table, size_t n, const char *section);

/* Frees the strings held by conf and sets them to NULL. Accepts NULL conf. */
void cfg_release(const cfg_entry_t *table, size_t n, void *conf);

#endif
