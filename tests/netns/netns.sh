# shellcheck shell=bash
#
# netns.sh: several "hosts" on one machine for multi-host tests. Source it from a bash script.
#
# Each host is a network namespace with its own eth0 (a veth into a bridge that lives in a
# namespace of its own, so nothing touches the machine's network) and address 10.77.0.<i>/24,
# plus a mount namespace with a private tmpfs on /dev/shm. A host is kept alive by one
# "anchor" process (sleep) that holds both namespaces; commands run in a host by entering the
# anchor's namespaces with nsenter, so every command of a host sees the same /dev/shm. Path-named
# Unix sockets and the rest of the file system stay shared (give each host its own directories).
# Names carry a per-run prefix (rc + 6 random hex digits, claimed atomically by creating the bridge
# namespace), so parallel runs never collide; traffic stays inside the namespaces the run created.
#
# Functions (all return non-zero on failure; nothing here calls exit):
#
#   netns_require            0 when this can run here (root, `ip netns`, unshare, nsenter); else
#                            prints the reason on stderr and returns 1. Tests SKIP on 1.
#   netns_setup N [SHM]      creates N hosts (1..N) on one bridge, each with a tmpfs of SHM (default
#                            2g) on /dev/shm, and installs netns_teardown as the EXIT trap (and on
#                            INT/TERM: tear down, exit 130); a caller with its own EXIT trap must
#                            call netns_teardown in it.
#   netns_ip I               prints host I's address (10.77.0.I).
#   netns_exec I CMD...      runs CMD in host I and waits; returns its status.
#   netns_spawn I CMD...     starts CMD in host I in the background; sets NETNS_PID to its pid
#                            (the process itself, inside the host). netns_teardown kills it.
#   netns_kill PID [SIG]     sends SIG (default TERM) to a spawned process and waits for it; prints
#                            nothing, returns the process's exit status.
#   netns_link I up|down     takes host I's eth0 up or down (a network partition).
#   netns_teardown           kills what netns_spawn started (TERM, then KILL after 5 s), stops the
#                            anchors and deletes every namespace of this run. Idempotent.
#
# For rayc cluster tests (the common start of tests/netns/*.sh):
#   netns_cluster_begin TAG N SHM [HINT]
#                            sets ROOT to a new /tmp/rayc-TAG.XXXXXX (host i's rayc temp dir is
#                            $ROOT/n<i>), defines `fail MSG` (prints FAIL: MSG (HINT), exits 1),
#                            creates N hosts (netns_setup) and installs an EXIT trap that runs
#                            `rayc stop --force` on each host, tears the hosts down, fails on
#                            sanitizer reports in $ROOT/**/*.out (unless NETNS_NO_SANITIZER_CHECK
#                            is set), and removes ROOT unless the test failed or KEEP is set.
#                            Needs B (the build dir). FAILED=1 marks a failure for the trap.
#
# Variables: NETNS_PREFIX (this run's prefix), NETNS_N (host count), NETNS_PID (last spawn).
#
# Example:
#   . tests/netns/netns.sh
#   netns_require || exit 77          # 77: skipped
#   netns_setup 2
#   netns_spawn 1 ./server --bind "$(netns_ip 1)"
#   netns_exec 2 ./client --connect "$(netns_ip 1)"

NETNS_PREFIX=""
NETNS_N=0
NETNS_PID=""
_NETNS_ANCHORS=()
_NETNS_SPAWNED=()

netns_require() {
  if [ "$(id -u)" != 0 ]; then
    echo "netns: needs root (network namespaces)" >&2
    return 1
  fi
  local tool
  for tool in ip unshare nsenter mount; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "netns: $tool is not installed" >&2
      return 1
    fi
  done
  local probe="rcprobe$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "netns: 'ip netns add' does not work here" >&2
    return 1
  fi
  ip netns del "$probe" 2>/dev/null
  return 0
}

netns_ip() {
  echo "10.77.0.$1"
}

_netns_host() { echo "${NETNS_PREFIX}h$1"; }

# Links host i to the bridge and brings its interfaces up.
_netns_add_host() {
  local i=$1 ns v
  ns=$(_netns_host "$i")
  v="${NETNS_PREFIX}v$i"
  ip netns add "$ns" || return 1
  ip link add "$v" type veth peer name eth0 netns "$ns" || return 1
  ip link set "$v" netns "${NETNS_PREFIX}sw" || return 1
  ip -n "${NETNS_PREFIX}sw" link set "$v" master br0 || return 1
  ip -n "${NETNS_PREFIX}sw" link set "$v" up || return 1
  ip -n "$ns" addr add "$(netns_ip "$i")/24" dev eth0 || return 1
  ip -n "$ns" link set eth0 up || return 1
  ip -n "$ns" link set lo up || return 1
}

# Starts host i's anchor: a process in its network namespace and a new mount namespace with a
# private tmpfs on /dev/shm. Waits until the mount is in place.
_netns_anchor() {
  local i=$1 shm=$2 ns ready pid
  ns=$(_netns_host "$i")
  ready=$(mktemp -u "/tmp/${NETNS_PREFIX}ready$i.XXXXXX")
  ip netns exec "$ns" unshare -m --propagation private sh -c \
    "mount -t tmpfs -o size=$shm tmpfs /dev/shm && touch '$ready' && exec sleep 1000000" &
  pid=$!
  _NETNS_ANCHORS[i]=$pid
  local k
  for k in $(seq 1 200); do
    [ -e "$ready" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "netns: host $i's anchor died (mount failed?)" >&2
      return 1
    fi
    sleep 0.01
  done
  rm -f "$ready"
  # The pid is `ip netns exec`, which execs unshare, which execs sh, which execs sleep: same pid.
  [ -e "/proc/$pid/ns/mnt" ] || return 1
}

# Picks an unused prefix "rc" + 6 hex digits (veth names must stay under 16 characters) and makes
# this run's bridge namespace; ip netns add fails when the name is taken, so two runs cannot share.
_netns_claim_prefix() {
  local k
  for k in $(seq 1 50); do
    NETNS_PREFIX=$(printf 'rc%06x' $(((RANDOM * 32768 + RANDOM + $$) % 16777216)))
    ip netns add "${NETNS_PREFIX}sw" 2>/dev/null && return 0
  done
  echo "netns: cannot create a namespace" >&2
  NETNS_PREFIX=""
  return 1
}

netns_setup() {
  local n=$1 shm=${2:-2g} i
  NETNS_N=$n
  trap netns_teardown EXIT
  trap 'netns_teardown; exit 130' INT TERM
  _netns_claim_prefix || return 1
  ip -n "${NETNS_PREFIX}sw" link add br0 type bridge || return 1
  ip -n "${NETNS_PREFIX}sw" link set br0 up || return 1
  for i in $(seq 1 "$n"); do
    _netns_add_host "$i" || return 1
    _netns_anchor "$i" "$shm" || return 1
  done
}

netns_exec() {
  local i=$1
  shift
  nsenter --target "${_NETNS_ANCHORS[i]}" --mount --net -- "$@"
}

netns_spawn() {
  local i=$1
  shift
  nsenter --target "${_NETNS_ANCHORS[i]}" --mount --net -- "$@" &
  NETNS_PID=$!
  _NETNS_SPAWNED+=("$NETNS_PID")
}

netns_kill() {
  local pid=$1 sig=${2:-TERM}
  kill -s "$sig" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

netns_link() {
  ip -n "$(_netns_host "$1")" link set eth0 "$2"
}

# Waits up to $2 seconds for pid $1 to exit; returns 0 if it did.
_netns_wait_gone() {
  local pid=$1 k
  for k in $(seq 1 $(($2 * 20))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

netns_teardown() {
  local pid i
  for pid in "${_NETNS_SPAWNED[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${_NETNS_SPAWNED[@]}"; do
    _netns_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  _NETNS_SPAWNED=()
  for pid in "${_NETNS_ANCHORS[@]}"; do
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  _NETNS_ANCHORS=()
  if [ -n "$NETNS_PREFIX" ]; then
    for i in $(seq 1 "$NETNS_N"); do
      ip netns del "$(_netns_host "$i")" 2>/dev/null
    done
    ip netns del "${NETNS_PREFIX}sw" 2>/dev/null
  fi
  NETNS_N=0
  return 0
}

netns_cluster_begin() {
  _NETNS_HINT=${4:-}
  ROOT=$(mktemp -d "/tmp/rayc-$1.XXXXXX")
  fail() {
    echo "FAIL: $*${_NETNS_HINT:+ ($_NETNS_HINT)}"
    FAILED=1
    exit 1
  }
  netns_setup "$2" "$3" || fail "could not create the namespace hosts"
  trap _netns_cluster_end EXIT # after netns_setup, whose own EXIT trap would replace it
}

_netns_cluster_end() {
  local i
  for i in $(seq 1 "$NETNS_N"); do
    [ -d "$ROOT/n$i" ] && netns_exec "$i" "$B/bin/rayc" stop --force --temp-dir "$ROOT/n$i" >/dev/null 2>&1
  done
  netns_teardown
  # Under the sanitizers every daemon and worker reports errors and leaks into its .out file.
  if [ -z "${NETNS_NO_SANITIZER_CHECK:-}" ] &&
    grep -l -E 'Sanitizer|runtime error' -r "$ROOT" --include='*.out' 2>/dev/null; then
    echo "FAIL: sanitizer reports in the files above${_NETNS_HINT:+ ($_NETNS_HINT)}"
    FAILED=1
  fi
  if [ "${KEEP:-}" = "" ] && [ "${FAILED:-0}" = 0 ]; then rm -rf "$ROOT"; else echo "logs kept in $ROOT"; fi
  [ "${FAILED:-0}" = 0 ] || exit 1
}
