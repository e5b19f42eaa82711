#!/usr/bin/env bash
# The systemd test (issue 13): two namespace hosts, each booting a real systemd in a container
# (systemd-nspawn over an overlay of this machine's root, so the container's package installs are
# thrown away with it). The rayc package is installed in each with apt-get, host 1 is brought up
# by rayc-head.target and host 2 by rayc-node.target, and then:
#   - a driver on the head, given no address or token, runs tasks on both nodes;
#   - `kill -9` of host 2's raylet while a task runs there: systemd restarts it, the node rejoins,
#     the owner's retry of the lost task completes, and a new task runs there;
#   - `kill -9` of host 2's store: systemd restarts it and a new task runs there;
#   - `rayc stop` on the head refuses and names systemctl; `rayc status` needs no flags;
#   - journald holds each daemon's lines; `systemctl stop rayc-node.target` leaves no rayc process.
# usage: systemd_cluster.sh BUILD_DIR DEB        exit 77: cannot run here (skipped)
set -u
B=$1 DEB=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/netns.sh"
netns_require || exit 77
command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn is not installed" >&2; exit 77; }
[ -f "$DEB" ] || { echo "no package $DEB (make deb)" >&2; exit 1; }

. "$here/containers.sh"
fail() { echo "FAIL: $*"; ct_dump; exit 1; }
step() { echo "== $(date +%T) $*"; }

ct_init
netns_setup 2 || fail "namespace hosts"
trap ct_cleanup EXIT
cp "$DEB" "$CT_SHARE/rayc.deb"
cp "$B/tests/drivers/sysnode" "$B/lib/libtest_tasks.so" "$CT_SHARE/"
WORK=$CT_WORK

# rayc.yaml for host i (1: the head); the rest of the file keeps the package's defaults.
config() {
  local i=$1 head=false
  [ "$i" = 1 ] && head=true
  cat <<EOF
node-ip-address: $(netns_ip "$i")
gcs-address: $(netns_ip 1):6380
head: $head
token-file: /etc/rayc/cluster_token
session-dir: /var/lib/rayc/session
object-manager-port: 8076
min-worker-port: 10002
max-worker-port: 10999
num-cpus: 2
memory: 1G
object-store-memory: 128M
resources: {host$i: 100}
EOF
}

main_pid() { c "$1" systemctl show -p MainPID --value "$2"; }
restarts() { c "$1" systemctl show -p NRestarts --value "$2"; }
# Waits until unit $2 on host $1 is active with a main pid other than $3.
wait_restarted() {
  for _ in $(seq 1 600); do
    local pid st
    pid=$(main_pid "$1" "$2") st=$(c "$1" systemctl is-active "$2")
    [ "$st" = active ] && [ "$pid" != 0 ] && [ "$pid" != "$3" ] && return 0
    sleep 0.1
  done
  fail "host $1: $2 was not restarted"
}
driver() { c 1 env RAYC_CODE_PATH=/opt/rayc-test/libtest_tasks.so /opt/rayc-test/sysnode "$@"; }

step "boot two containers"
ct_boot 1; ct_boot 2
ct_wait 1; ct_wait 2

step "install the package"
for i in 1 2; do
  c "$i" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /opt/rayc-test/rayc.deb \
    >"$WORK/apt$i.log" 2>&1 || { cat "$WORK/apt$i.log"; fail "host $i: apt-get install"; }
  c "$i" systemctl is-enabled rayc-raylet.service >/dev/null || fail "host $i: units not enabled"
  [ "$(c "$i" systemctl is-active rayc-raylet.service)" != active ] || fail "host $i: installing started rayc"
  config "$i" | c "$i" sh -c 'cat > /etc/rayc/rayc.yaml'
done
c 1 cat /etc/rayc/cluster_token | c 2 sh -c 'cat > /etc/rayc/cluster_token'

step "start rayc-head.target on host 1, rayc-node.target on host 2"
c 1 systemctl start rayc-head.target || fail "rayc-head.target"
c 2 systemctl start rayc-node.target || fail "rayc-node.target"
for u in rayc-gcs rayc-store rayc-raylet rayc-dashboard; do
  [ "$(c 1 systemctl is-active $u)" = active ] || fail "host 1: $u is not active"
done
c 1 systemctl show -p User --value rayc-raylet | grep -qx rayc || fail "the raylet does not run as rayc"

step "a driver with no address runs tasks on both nodes"
out=$(driver across) || { echo "$out"; fail "driver across"; }
echo "$out"
N2=$(echo "$out" | awk '$1 == "node2" {print $2}')
c 1 rayc status | tee "$WORK/status" | head -20
grep -q "$(netns_ip 2)" "$WORK/status" || fail "rayc status (no flags) does not show host 2"

step "kill -9 the raylet on host 2 while a task runs there"
pid=$(main_pid 2 rayc-raylet)
c 1 env RAYC_CODE_PATH=/opt/rayc-test/libtest_tasks.so /opt/rayc-test/sysnode long2 >"$WORK/long2.out" 2>&1 &
LONG=$!
for _ in $(seq 1 300); do grep -q READY "$WORK/long2.out" && break; sleep 0.1; done
sleep 2 # the 6 s task is running on host 2
c 2 kill -9 "$pid"
wait_restarted 2 rayc-raylet "$pid"
[ "$(restarts 2 rayc-raylet)" -ge 1 ] || fail "NRestarts of the raylet"
[ "$(c 2 systemctl is-active rayc-store)" = active ] || fail "the store did not carry on"
for _ in $(seq 1 100); do # the old raylet's workers end with it (none is left orphaned)
  orphans=$(c 2 ps -o pid=,ppid=,args= -u rayc | awk '$2 == 1 && $3 ~ /rayc-worker/')
  [ -z "$orphans" ] && break
  sleep 0.1
done
[ -z "$orphans" ] || fail "workers of the killed raylet are left: $orphans"
wait "$LONG" || { cat "$WORK/long2.out"; fail "the task lost with the raylet was not retried to completion"; }
cat "$WORK/long2.out"
out=$(driver on2) || { echo "$out"; fail "no task runs on host 2 after its raylet restarted"; }
N2B=$(echo "$out" | awk '$1 == "node2" {print $2}')
[ -n "$N2B" ] && [ "$N2B" != "$N2" ] || fail "host 2 did not rejoin as a new node incarnation ($N2 -> $N2B)"
c 1 rayc list nodes | grep "${N2:0:8}" | grep -q DEAD || fail "the old incarnation of host 2 is not DEAD"

step "kill -9 the store on host 2"
pid=$(main_pid 2 rayc-store)
c 2 kill -9 "$pid"
wait_restarted 2 rayc-store "$pid"
wait_restarted 2 rayc-raylet 0
out=$(driver on2) || { echo "$out"; fail "no task runs on host 2 after its store restarted"; }
echo "$out"
c 2 systemctl --no-pager status rayc-store rayc-raylet | grep -E "Active:|Main PID"

step "rayc stop defers to systemctl"
if c 1 rayc stop >"$WORK/stop.out" 2>&1; then fail "rayc stop succeeded on a systemd node"; fi
grep -q "systemctl stop rayc-head.target" "$WORK/stop.out" || { cat "$WORK/stop.out"; fail "rayc stop's message"; }

step "journald has each daemon's lines"
c 1 journalctl --no-pager -u rayc-gcs | grep -q "registered (ALIVE)" || fail "no rayc-gcs lines in the journal"
c 2 journalctl --no-pager -u rayc-raylet | grep -q "registered with the GCS" || fail "no rayc-raylet lines"
c 2 journalctl --no-pager -u rayc-store | grep -q "rayc-store\|store\[" || fail "no rayc-store lines"

# Stopping a target queues its services' stop jobs (PartOf=) and returns; they finish in moments.
no_rayc_left() {
  local left=""
  for _ in $(seq 1 300); do
    left=$(c "$1" pgrep -a -f '^/usr/bin/rayc-')
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  fail "host $1: rayc processes left 30 s after stopping its target: $left"
}
step "systemctl stop rayc-node.target leaves no rayc process"
c 2 systemctl stop rayc-node.target || fail "stop rayc-node.target"
no_rayc_left 2
c 1 systemctl stop rayc-head.target || fail "stop rayc-head.target"
no_rayc_left 1
echo "PASS systemd cluster"
