#!/bin/sh
# Builds the Debian package with the standard tools (`make deb` runs this): stages `make install`
# with PREFIX=/usr into a tree, adds DEBIAN/ (control with dpkg-shlibdeps' dependencies,
# conffiles, maintainer scripts, shlibs, the ldconfig trigger, md5sums) and runs dpkg-deb.
# usage: deploy/make-deb.sh BUILD_DIR OUT_DIR      (VERSION, SOVERSION from the environment)
# Prints the path of the .deb it wrote.
set -eu
B=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
VERSION=${VERSION:-0.1.0} SOVERSION=${SOVERSION:-0}
arch=$(dpkg --print-architecture)
root=$(mktemp -d "${TMPDIR:-/tmp}/rayc-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
stage=$root/rayc
DESTDIR=$stage PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system VERSION=$VERSION \
  SOVERSION=$SOVERSION GZIP_MAN=1 SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)} \
  "$here/install.sh" "$B"
rm -f "$stage/etc/rayc/rayc.yaml.dist"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage"/usr/bin/rayc* "$stage"/usr/lib/librayc*.so.*.*
find "$stage/usr/lib/python3" -name '*.so' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} + 2>/dev/null || true
doc=$stage/usr/share/doc/rayc
install -m 0644 "$here/debian/copyright" "$doc/copyright"
printf 'rayc (%s) unstable; urgency=medium\n\n  * Built from the rayc tree.\n\n -- rayc maintainers <rayc@example.org>  %s\n' \
  "$VERSION" "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n > "$doc/changelog.gz"
[ -f "$doc/README.md" ] && gzip -9n "$doc/README.md"
[ -f "$doc/OPERATIONS.md" ] && gzip -9n "$doc/OPERATIONS.md"

# Dependencies of the ELF files, from the shlibs of the installed libraries.
mkdir -p "$root/debian" "$stage/DEBIAN"
printf 'Source: rayc\n\nPackage: rayc\nArchitecture: any\n' > "$root/debian/control"
deps=$(cd "$root" && dpkg-shlibdeps -O -S"$stage" -l"$stage/usr/lib" "$stage"/usr/bin/rayc* \
  "$stage"/usr/lib/librayc*.so.*.* $(find "$stage/usr/lib/python3" -name '*.so' 2>/dev/null) 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -d "$stage/usr/lib/python3" ] && deps="$deps, python3 (>= 3.11), python3-cloudpickle"
size=$(du -k -s "$stage" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$deps|" \
  "$here/debian/control.in" > "$stage/DEBIAN/control"
echo /etc/rayc/rayc.yaml > "$stage/DEBIAN/conffiles"
echo "librayc $SOVERSION rayc (>= $VERSION)" > "$stage/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$stage/DEBIAN/triggers"
for s in postinst prerm postrm; do install -m 0755 "$here/debian/$s" "$stage/DEBIAN/$s"; done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
  xargs md5sum > DEBIAN/md5sums)
chmod 0644 "$stage"/DEBIAN/control "$stage"/DEBIAN/conffiles "$stage"/DEBIAN/shlibs "$stage"/DEBIAN/triggers \
  "$stage"/DEBIAN/md5sums
mkdir -p "$out"
deb=$out/rayc_${VERSION}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
