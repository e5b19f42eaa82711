#!/usr/bin/env bash
# The `rayc up` test (issue 13): three namespace hosts, each a container running real systemd and
# sshd (from openssh-server, with a test key), start with nothing of rayc installed. From host 1's
# network (the operator's machine), `rayc up CLUSTER.yaml`:
#   - brings the cluster up from nothing (package, config, token, targets) and a driver on the
#     head runs tasks on the workers;
#   - a second `up` changes nothing and says so (no daemon restarted);
#   - a changed setting for one worker restarts that worker only;
#   - `rayc up --status` shows each host; an unreachable host and refused authentication are
#     reported per host while the other hosts are still handled;
#   - `rayc down` leaves no rayc process on any host and the targets disabled.
# usage: rayc_up.sh BUILD_DIR DEB        exit 77: cannot run here (skipped)
set -u
B=$1 DEB=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../netns/netns.sh"
netns_require || exit 77
for t in systemd-nspawn ssh scp ssh-keygen /usr/sbin/sshd; do
  command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 77; }
done
[ -f "$DEB" ] || { echo "no package $DEB (make deb)" >&2; exit 1; }
. "$here/containers.sh"
fail() { echo "FAIL: $*"; ct_dump; exit 1; }
step() { echo "== $(date +%T) $*"; }

ct_init
netns_setup 3 || fail "namespace hosts"
trap ct_cleanup EXIT
W=$CT_WORK
cp "$B/tests/drivers/sysnode" "$B/lib/libtest_tasks.so" "$CT_SHARE/"
ssh-keygen -q -t ed25519 -N '' -C rayc-up-test -f "$W/key" || fail "ssh-keygen"
cp "$W/key.pub" "$CT_SHARE/authorized_keys"

step "boot three containers running sshd"
for i in 1 2 3; do ct_boot "$i"; done
for i in 1 2 3; do
  ct_wait "$i"
  c "$i" sh -c 'mkdir -p -m 700 /root/.ssh && cp /opt/rayc-test/authorized_keys /root/.ssh/authorized_keys &&
    chmod 600 /root/.ssh/authorized_keys && systemctl start systemd-logind ssh' || fail "host $i: sshd"
  if c "$i" dpkg-query -W rayc >/dev/null 2>&1; then fail "host $i: rayc is installed before the test"; fi
done

cluster() { # $1: extra worker settings for host 3; $2: an extra worker line
  cat <<EOF
cluster_name: uptest
ssh_user: root
ssh_key: key
ssh_options: [StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null, LogLevel=ERROR, GSSAPIAuthentication=no]
package: $DEB
settings:
  num-cpus: 2
  memory: 1G
  object-store-memory: 128M
head:
  host: $(netns_ip 1)
  settings: {resources: {host1: 100}}
workers:
  - host: $(netns_ip 2)
    settings: {resources: {host2: 100}}
  - host: $(netns_ip 3)
    settings: {resources: {host3: 100}$1}
$2
EOF
}
up() { netns_exec 1 "$B/bin/rayc" "$@"; }
pids() { for i in 1 2 3; do c "$i" systemctl show -p MainPID --value rayc-raylet; done | paste -sd' '; }

step "rayc up from nothing"
cluster "" "" > "$W/cluster.yaml"
up up "$W/cluster.yaml" | tee "$W/up1.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "rayc up exited non-zero"
[ "$(grep -c 'package installed, config written' "$W/up1.out")" = 3 ] || fail "not every host was installed"
grep -q "(head): .*rayc-head.target started" "$W/up1.out" || fail "the head's target was not started"
grep -q "3 of 3 hosts up" "$W/up1.out" || fail "rayc up's summary"
c 1 rayc status | grep -q "3 nodes alive" || { c 1 rayc status; fail "the head does not see 3 nodes"; }
c 1 env RAYC_CODE_PATH=/opt/rayc-test/libtest_tasks.so /opt/rayc-test/sysnode across || fail "tasks across hosts"

step "a second rayc up changes nothing"
before=$(pids)
up up "$W/cluster.yaml" | tee "$W/up2.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "the second rayc up exited non-zero"
grep -q "nothing changed; 3 of 3 hosts up" "$W/up2.out" || fail "the second up did not say nothing changed"
[ "$(grep -c ': unchanged$' "$W/up2.out")" = 3 ] || fail "a host was not unchanged"
[ "$(pids)" = "$before" ] || fail "raylets restarted by a no-op up: $before -> $(pids)"

step "a changed setting restarts only that worker"
cluster ", num-cpus: 1" "" > "$W/cluster.yaml"
up up "$W/cluster.yaml" | tee "$W/up3.out"
grep -q "$(netns_ip 3): config written, rayc-node.target restarted" "$W/up3.out" || fail "host 3 was not restarted"
[ "$(grep -c ': unchanged$' "$W/up3.out")" = 2 ] || fail "other hosts were touched"
after=$(pids)
[ "$(echo "$after" | cut -d' ' -f1-2)" = "$(echo "$before" | cut -d' ' -f1-2)" ] || fail "hosts 1-2 restarted"
[ "$(echo "$after" | cut -d' ' -f3)" != "$(echo "$before" | cut -d' ' -f3)" ] || fail "host 3 not restarted"
c 3 grep -qx "num-cpus: 1" /etc/rayc/rayc.yaml || fail "host 3's config"

step "rayc up --status"
for _ in $(seq 1 100); do c 1 rayc status | grep -q "3 nodes alive" && break; sleep 0.2; done
up up --status "$W/cluster.yaml" | tee "$W/status.out"
[ "$(grep -c 'store active raylet active' "$W/status.out")" = 3 ] || fail "--status does not show 3 running hosts"
grep -q "(head): rayc $(dpkg-deb -f "$DEB" Version); head.target active gcs active .*3 nodes alive" "$W/status.out" || fail "--status head line"

step "an unreachable host and refused authentication are reported per host"
cluster ", num-cpus: 1" "  - $(netns_ip 9)" > "$W/bad.yaml"
if up up "$W/bad.yaml" > "$W/bad.out" 2>&1; then cat "$W/bad.out"; fail "rayc up with a dead host exited 0"; fi
cat "$W/bad.out"
grep -q "$(netns_ip 9): cannot run commands: unreachable" "$W/bad.out" || fail "no unreachable line"
[ "$(grep -c ': unchanged$' "$W/bad.out")" = 3 ] || fail "the good hosts were not handled"
grep -q "3 of 4 hosts up" "$W/bad.out" || fail "the summary"
sed 's/^ssh_user: root/ssh_user: nobody/' "$W/cluster.yaml" > "$W/auth.yaml"
if up up --status "$W/auth.yaml" > "$W/auth.out" 2>&1; then fail "--status with a refused user exited 0"; fi
cat "$W/auth.out"
[ "$(grep -c 'authentication refused' "$W/auth.out")" = 3 ] || fail "refused authentication not reported per host"

step "rayc down"
up down "$W/cluster.yaml" | tee "$W/down.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "rayc down exited non-zero"
[ "$(grep -c 'stopped and disabled; no rayc process runs' "$W/down.out")" = 3 ] || fail "rayc down's lines"
for i in 1 2 3; do
  left=$(c "$i" pgrep -a -f '^/usr/bin/rayc-')
  [ -z "$left" ] || fail "host $i: left running: $left"
  c "$i" systemctl is-enabled --quiet rayc-head.target rayc-node.target && fail "host $i: a target is enabled"
done
echo "PASS rayc up"
