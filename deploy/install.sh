#!/bin/sh
# Installs a built tree (`make install` runs this): binaries, librayc with its soname, rayc.h, the
# pkg-config file, systemd units, the sysusers entry, the configuration example, man pages, docs.
#
# usage: deploy/install.sh BUILD_DIR        with the environment:
#   DESTDIR (staging root, default none), PREFIX (/usr/local), SYSCONFDIR (/etc),
#   UNITDIR ($PREFIX/lib/systemd/system), VERSION (librayc's version, e.g. 0.1.0),
#   SOVERSION (0), GZIP_MAN (1: gzip man pages, as Debian wants)
# Every program in BUILD_DIR/bin named rayc or rayc-* is installed, every librayc*.so in
# BUILD_DIR/lib and the Python package in BUILD_DIR/python, so a new daemon, library or module
# needs no change here. /etc/rayc/rayc.yaml is written
# only when absent (an operator's file is kept; the new one goes beside it as rayc.yaml.dist).
set -eu
B=${1:?usage: install.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
D=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
VERSION=${VERSION:-0.1.0}
SOVERSION=${SOVERSION:-0}
GZIP_MAN=${GZIP_MAN:-0}
bindir=$PREFIX/bin libdir=$PREFIX/lib incdir=$PREFIX/include
mandir=$PREFIX/share/man docdir=$PREFIX/share/doc/rayc

install -d "$D$bindir" "$D$libdir/pkgconfig" "$D$incdir" "$D$UNITDIR" "$D$libdir/sysusers.d" \
  "$D$SYSCONFDIR/rayc" "$D$mandir/man1" "$D$mandir/man8" "$D$docdir"

# Programs and libraries, found by name.
for f in "$B"/bin/rayc "$B"/bin/rayc-*; do
  [ -f "$f" ] && install -m 0755 "$f" "$D$bindir/"
done
for f in "$B"/lib/librayc*.so; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .so)
  install -m 0644 "$f" "$D$libdir/$name.so.$VERSION"
  ln -sf "$name.so.$VERSION" "$D$libdir/$name.so.$SOVERSION"
  ln -sf "$name.so.$SOVERSION" "$D$libdir/$name.so"
done
install -m 0644 "$here"/../include/*.h "$D$incdir/"

# The Python package (its modules and the C extension), where Debian's python3 finds it for
# PREFIX=/usr (elsewhere: add PREFIX/lib/python3/dist-packages to PYTHONPATH).
if [ -d "$B/python/rayc" ]; then
  pydir=$PREFIX/lib/python3/dist-packages
  (cd "$B/python" && find rayc -name '*.py' -o -name '*.so') | while read -r f; do
    install -D -m 0644 "$B/python/$f" "$D$pydir/$f"
  done
fi

sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" "$here/rayc.pc.in" > "$D$libdir/pkgconfig/rayc.pc"

# Units: paths filled in, the shared hardening block put into each [Service].
hard=$(grep -v '^#' "$here/systemd/hardening.conf")
for u in "$here"/systemd/rayc-*.service "$here"/systemd/rayc-*.target; do
  out="$D$UNITDIR/$(basename "$u")"
  awk -v h="$hard" '{ if ($0 == "@HARDENING@") print h; else print }' "$u" |
    sed -e "s|@BINDIR@|$bindir|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" -e "s|@DOCDIR@|$docdir|g" > "$out"
  chmod 0644 "$out"
done
install -m 0644 "$here/systemd/rayc.sysusers" "$D$libdir/sysusers.d/rayc.conf"

# The configuration: the operator's file is never overwritten.
if [ -e "$D$SYSCONFDIR/rayc/rayc.yaml" ] && ! cmp -s "$here/rayc.yaml" "$D$SYSCONFDIR/rayc/rayc.yaml"; then
  install -m 0644 "$here/rayc.yaml" "$D$SYSCONFDIR/rayc/rayc.yaml.dist"
else
  install -m 0644 "$here/rayc.yaml" "$D$SYSCONFDIR/rayc/rayc.yaml"
fi

# The Python package (python/rayc and its extension) where Debian's /usr/bin/python3 finds it.
if [ -f "$B/python/rayc/__init__.py" ]; then
  if [ "$PREFIX" = /usr ]; then pydir=$PREFIX/lib/python3/dist-packages
  else pydir=${PYDIR:-$PREFIX/lib/python3.$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')/dist-packages}
  fi
  (cd "$B/python" && find rayc -name '*.py' -o -name '*.so') | while read -r f; do
    install -D -m 0644 "$B/python/$f" "$D$pydir/$f"
  done
fi

# Man pages from each program's own --help, so they cannot drift from it.
"$here/gen-man.sh" "$B/bin" "$D$mandir" "$VERSION"
if [ "$GZIP_MAN" = 1 ]; then
  find "$D$mandir" -name '*.[18]' -exec gzip -9nf {} +
fi

for f in "$here"/../docs/OPERATIONS.md "$here"/../README.md "$here/rayc.yaml"; do
  [ -f "$f" ] && install -m 0644 "$f" "$D$docdir/"
done
exit 0
