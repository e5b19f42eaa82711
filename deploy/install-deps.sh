#!/usr/bin/env bash
# Installs the Debian packages rayc's build and tests need, when any is missing. Run as root
# (or with sudo available). Safe to run again: it does nothing when everything is there.
set -euo pipefail
pkgs=(build-essential pkg-config libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libhiredis-dev
      libyaml-dev check redis-server libuv1-dev libsystemd-dev iproute2 procps openssl
      systemd systemd-container dpkg-dev lintian man-db binutils openssh-server openssh-client)
# (issue 13: systemd-analyze and systemd-nspawn for the unit and systemd tests, dpkg-dev and lintian
#  for `make deb`, man-db to check man pages, OpenSSH for `rayc up` and its test)
pkgs+=(libarchive-dev libssl-dev libjansson-dev) # jobs: working-dir packages, SHA-256, records
pkgs+=(libmicrohttpd-dev prometheus curl) # observability: /metrics and the head's HTTP endpoint, promtool
pkgs+=(clang libclang-rt-14-dev) # rel: libFuzzer harnesses (tests/fuzz/, make fuzz; a short run in make test)
pkgs+=(python3-requests chromium chromium-driver) # obs: Jobs REST API and dashboard tests
pkgs+=(valgrind) # make bench: instructions per operation (bench/instr-per-op, callgrind; perf has no hardware counters in this VM)
pkgs+=(libcurl4-openssl-dev) # obs: rayc job --address http://HEAD:8265 (the Jobs REST API)
pkgs+=(python3-dev python3-cloudpickle python3-numpy python3-pytest) # the Python front end (python/rayc) and its tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "deps: all ${#pkgs[@]} packages present"; exit 0; }
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
