/*
 * `rayc up|down CLUSTER.yaml` and `rayc up --status`: bringing a cluster of machines up and down
 * over ssh (the system's OpenSSH `ssh` and `scp`, never an ssh client of ours), with the Debian
 * package and the systemd units (deploy/).
 *
 * The cluster file (see docs/OPERATIONS.md, "rayc up"):
 *
 *     cluster_name: demo
 *     ssh_user: root               # not root: commands run with `sudo -n`
 *     ssh_key: ~/.ssh/id_ed25519   # relative paths are relative to the cluster file
 *     ssh_port: 22
 *     ssh_options: [StrictHostKeyChecking=accept-new]
 *     package: rayc_0.1.0_amd64.deb
 *     gcs_port: 6380
 *     settings: {object-store-memory: 1G}        # rayc.yaml keys for every host
 *     head: {host: 10.0.0.1, settings: {num-cpus: 4}}
 *     workers:
 *       - {host: 10.0.0.2, settings: {resources: {gpu_a: 1}}}
 *
 * Each host's /etc/rayc/rayc.yaml is written whole from the file (node-ip-address, gcs-address,
 * head, the systemd paths and fixed ports, then the cluster's settings, then the host's; a later
 * key replaces an earlier one). `up` works host by host, head first: it installs the package
 * when the host lacks this very file (sha256, remembered in /var/lib/rayc/.up-package), writes the
 * config and the head's token when they differ, enables and starts the host's target, and
 * restarts it only when something it uses changed; a second `up` changes nothing and says so.
 * Each host's result is printed on its own line; a host that fails (unreachable, authentication
 * refused, install failed...) is reported and the others go on. Exit status 1 when any failed.
 */
#ifndef RAYC_CLI_UP_H
#define RAYC_CLI_UP_H

#include <stddef.h>

/* The commands (argv[0] is "up" or "down"); each returns an exit status (cli.h). */
int cli_up(int argc, char **argv);
int cli_down(int argc, char **argv);

typedef struct up_kv {
  char *key;   /* rayc.yaml key, '_' written as '-' */
  char *value; /* YAML text of the value (flow style for mappings and lists) */
} up_kv_t;

typedef struct up_kvs {
  up_kv_t *v;
  size_t n;
} up_kvs_t;

typedef struct up_host {
  char *host; /* what ssh connects to; also the node's node-ip-address */
  int head;
  up_kvs_t settings; /* this host's own */
} up_host_t;

typedef struct up_cluster {
  char *file; /* the cluster file as given */
  char *name;
  char *user;    /* NULL: ssh's default */
  char *key;     /* NULL: ssh's default keys */
  char *package; /* the .deb; NULL: up cannot install (status and down still work) */
  int port;      /* ssh port; 0: ssh's default */
  int gcs_port;
  char **ssh_opts; /* "-o" values */
  size_t n_ssh_opts;
  up_kvs_t settings; /* every host's */
  up_host_t *hosts;  /* hosts[0] is the head */
  size_t n_hosts;
  char *control_dir; /* ssh connection sharing (ControlMaster) sockets; NULL: none */
} up_cluster_t;

/* Reads the cluster file at path (borrowed) into c. 0, or -1 with *err a new message naming the
 * file and what is wrong. Release c with up_cluster_release() in both cases. */
int up_cluster_load(const char *path, up_cluster_t *c, char **err);
void up_cluster_release(up_cluster_t *c);

/* The /etc/rayc/rayc.yaml for host h of c (new; free()). */
char *up_host_config(const up_cluster_t *c, const up_host_t *h);

/* The result of a command run on a host over ssh. */
typedef struct up_run {
  int status; /* the remote command's exit status; 255: ssh itself failed; -1: not run */
  char *out;  /* stdout and stderr, new (free()) */
} up_run_t;

/* Runs the shell command cmd on h's machine (as root: prefixed with `sudo -n` for another user),
 * with stdin_data (may be NULL) on its stdin. */
void up_ssh(const up_cluster_t *c, const up_host_t *h, const char *cmd, const char *stdin_data, up_run_t *r);

/* Copies the local file to remote_path on h's machine with scp. */
void up_scp(const up_cluster_t *c, const up_host_t *h, const char *local, const char *remote_path, up_run_t *r);

/* Shares one ssh connection per host among all the commands of this run (OpenSSH's ControlMaster,
 * sockets in a new 0700 temp dir): a handshake per host instead of one per command. */
void up_ssh_share_start(up_cluster_t *c);

/* Closes the shared connections and removes their directory. Accepts a run that never started. */
void up_ssh_share_stop(up_cluster_t *c);

/* Says why ssh failed ("unreachable: ...", "authentication refused: ...") for a status-255 run;
 * a static or r-owned string, valid while r is. */
const char *up_ssh_error(const up_run_t *r);

/* The last line of text with content, for messages (a pointer into a static buffer). */
const char *up_last_line(const char *text);

#endif
