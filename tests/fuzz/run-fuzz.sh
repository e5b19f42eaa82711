#!/usr/bin/env bash
# Runs every libFuzzer harness in DIR for SECONDS each, starting from its corpus in
# tests/fuzz/corpus/<harness>/ (read only: new inputs go to a scratch copy, so the tree stays as
# committed). A crash, leak or sanitizer report fails the run; the input that caused it is kept in
# build/fuzz/crashes/ and printed (hex), to become a regression seed in the corpus.
#
#   run-fuzz.sh DIR SECONDS     exit 0 when every harness ran clean
set -u
DIR=${1:?usage: run-fuzz.sh DIR SECONDS}
SECS=${2:?usage: run-fuzz.sh DIR SECONDS}
HERE=$(cd "$(dirname "$0")" && pwd)
CRASH=$(cd "$DIR/.." && pwd)/crashes
mkdir -p "$CRASH"
failed=0
for bin in "$DIR"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="$HERE/corpus/$name"
  work=$(mktemp -d "/tmp/rayc-$name.XXXXXX")
  [ -d "$seeds" ] && cp -r "$seeds/." "$work/"
  log="$CRASH/$name.log"
  start=$(date +%s)
  "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$CRASH/$name-" "$work" > "$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  echo "fuzz: $name: ${execs:-?} runs in $(( $(date +%s) - start )) s, coverage ${cov:-?} edges, corpus $(ls "$work" | wc -l) inputs"
  if [ $rc != 0 ]; then
    failed=1
    echo "FAIL: $name exited $rc; its log: $log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    for f in "$CRASH/$name"-*; do [ -f "$f" ] && { echo "input $f:"; od -A x -t x1z "$f" | head -8; }; done
  fi
  rm -rf "$work"
done
exit $failed
