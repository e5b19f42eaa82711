# shellcheck shell=bash
#
# containers.sh: a real systemd per namespace host, for the system tests. Source it after
# tests/netns/netns.sh and netns_setup.
#
# Each container boots systemd-nspawn over an overlay of this machine's root (writes go to a tmpfs
# and vanish with it, so packages installed inside never touch the machine), with its own /tmp,
# the host's network namespace, CT_SHARE bound read-only at /opt/rayc-test, and systemd started
# only to basic.target (the machine's own services stay off).
#
#   ct_init                  makes CT_WORK (a temp dir) and CT_SHARE; installs ct_cleanup as the
#                            EXIT trap (it also runs netns_teardown)
#   ct_boot I                boots host I's container in the background
#   ct_wait I                waits until its systemd runs (fails the test after 180 s)
#   c I CMD...               runs CMD inside container I (all its namespaces)
#   ct_dump                  prints the rayc units' state and journal of every container
#   ct_cleanup               powers the containers off and removes CT_WORK
#
# The calling script defines fail() (print, ct_dump, exit 1).

CT_WORK=""
CT_SHARE=""
declare -a CT_NSPAWN CT_SD

ct_init() {
  CT_WORK=$(mktemp -d /tmp/rayc-ct.XXXXXX)
  CT_SHARE="$CT_WORK/share"
  mkdir -p "$CT_SHARE"
  trap ct_cleanup EXIT
  trap 'exit 130' INT TERM
}

ct_cleanup() {
  local i
  for i in "${!CT_SD[@]}"; do
    nsenter -t "${CT_SD[$i]}" --all systemctl poweroff >/dev/null 2>&1
  done
  for i in "${!CT_NSPAWN[@]}"; do
    for _ in $(seq 1 100); do kill -0 "${CT_NSPAWN[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${CT_NSPAWN[$i]}" 2>/dev/null
  done
  netns_teardown
  [ -n "$CT_WORK" ] && rm -rf "$CT_WORK"
}

ct_boot() {
  local i=$1 ns="${NETNS_PREFIX}h$1" w="$CT_WORK/h$1"
  mkdir -p "$w"
  chmod -R a+rX "$CT_SHARE"
  unshare -m --propagation private sh -c "mount -t tmpfs tmpfs $w && mkdir -p $w/up $w/work $w/root &&
    mount -t overlay overlay -o lowerdir=/,upperdir=$w/up,workdir=$w/work $w/root &&
    mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn &&
    exec systemd-nspawn -q -D $w/root --boot --register=no --keep-unit --machine=$ns \
      --network-namespace-path=/run/netns/$ns --tmpfs=/tmp --bind-ro=$CT_SHARE:/opt/rayc-test \
      --console=pipe systemd.unit=basic.target" >"$CT_WORK/console$i.log" 2>&1 </dev/null &
  CT_NSPAWN[$i]=$!
}

c() { local i=$1; shift; nsenter -t "${CT_SD[$i]}" --all "$@"; }

# ct_init_pid NSPAWN_PID: the pid of the container's systemd (a child of systemd-nspawn), or nothing
ct_init_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && { echo "$p"; return; }
  done
}

ct_wait() {
  local i=$1 st=""
  for _ in $(seq 1 1800); do # 180 s: a loaded machine boots slowly
    # nspawn forks a short-lived helper before the container's init: take only a child that
    # already runs systemd, and look again if the one taken has gone.
    if [ -n "${CT_SD[$i]:-}" ] && ! kill -0 "${CT_SD[$i]}" 2>/dev/null; then CT_SD[$i]=""; fi
    [ -z "${CT_SD[$i]:-}" ] && CT_SD[$i]=$(ct_init_pid "${CT_NSPAWN[$i]}")
    if [ -n "${CT_SD[$i]:-}" ]; then
      st=$(c "$i" systemctl is-system-running 2>/dev/null)
      case "$st" in running | degraded) return 0 ;; esac
    fi
    kill -0 "${CT_NSPAWN[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$CT_WORK/console$i.log"
  fail "host $i: systemd did not boot (state '$st')"
}

ct_dump() {
  local i
  for i in "${!CT_SD[@]}"; do
    echo "---- host $i: units"; c "$i" systemctl --no-pager list-units 'rayc*' 2>&1
    echo "---- host $i: journal"; c "$i" journalctl --no-pager -n 60 -u 'rayc*' 2>&1
  done
}
