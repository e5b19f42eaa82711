#!/bin/sh
# Writes man pages for the rayc CLI (section 1) and the daemons (section 8) from their --help
# output. usage: deploy/gen-man.sh BIN_DIR MAN_DIR VERSION
set -eu
bin=$1 man=$2 version=$3
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

# roff-escapes text: backslashes, and a leading dot or quote on a line.
esc() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }

page() { # name section summary
  name=$1 sec=$2 summary=$3 out=$man/man$2/$1.$2
  {
    printf '.TH %s %s "%s" "rayc %s" "rayc"\n' "$(echo "$name" | tr a-z A-Z)" "$sec" "$date" "$version"
    printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
    printf '.SH SYNOPSIS\n.B %s\n[\\fIflags\\fR]\n' "$name"
    printf '.SH DESCRIPTION\n.nf\n'
    env -i "$bin/$name" --help 2>&1 | esc
    if [ "$name" = rayc ]; then
      for c in $(env -i "$bin/rayc" --help 2>&1 | awk '/^commands:/{f=1;next} f&&NF{print $1}'); do
        printf '\n.fi\n.SS rayc %s\n.nf\n' "$c"
        env -i "$bin/rayc" "$c" --help 2>&1 | esc
      done
    fi
    printf '.fi\n.SH FILES\n/etc/rayc/rayc.yaml, /etc/rayc/cluster_token, /var/lib/rayc/session\n'
    printf '.SH SEE ALSO\nrayc(1), rayc-gcs(8), rayc-store(8), rayc-raylet(8), systemctl(1);\n'
    printf 'the operator'"'"'s guide, OPERATIONS.md, in the rayc documentation directory.\n'
  } > "$out"
}

page rayc 1 "start, stop and inspect a rayc cluster"
page rayc-gcs 8 "the rayc cluster's control store"
page rayc-store 8 "the rayc node's shared-memory object store"
page rayc-raylet 8 "the rayc node manager"
page rayc-dashboard 8 "the rayc head's HTTP endpoint: dashboard, state API, Jobs REST API"
page rayc-worker 8 "a rayc worker process (started by rayc-raylet)"
for f in "$bin"/rayc-*; do # programs added later get a page too
  n=$(basename "$f")
  [ -e "$man/man8/$n.8" ] || page "$n" 8 "a rayc program"
done
