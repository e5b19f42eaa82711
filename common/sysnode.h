/*
 * A node run by systemd (deploy/systemd/): how the CLI, drivers and the daemons agree on where it
 * lives without flags.
 *
 * The units run the daemons with `session-dir: /var/lib/rayc/session` (systemd's StateDirectory),
 * and the package links SYSNODE_DIR/session_latest -> session and SYSNODE_DIR/cluster_token ->
 * /etc/rayc/cluster_token, so SYSNODE_DIR has the shape of a `rayc start` temp dir: every lookup
 * that takes a temp dir (the GCS address in session_latest/address, the token by token_find's
 * rule, the store's socket) works on it unchanged. The raylet writes <session>/address.
 *
 * Precedence, for a program not given a temp dir (--temp-dir, $RAYC_TEMP_DIR) or an address
 * ($RAYC_ADDRESS): a node this user started with `rayc start` (/tmp/rayc/session_latest) first,
 * then the systemd node, else /tmp/rayc.
 */
#ifndef RAYC_COMMON_SYSNODE_H
#define RAYC_COMMON_SYSNODE_H

#define SYSNODE_DIR "/var/lib/rayc"

/* 1 when this machine has a systemd-run node (SYSNODE_DIR/session_latest/address exists and is
 * readable by the caller) and no `rayc start` node in /tmp/rayc; else 0. */
int sysnode_present(void);

/* 1 when session_dir (borrowed) is the systemd node's session (resolving links); else 0. */
int sysnode_is_session(const char *session_dir);

#endif
