#!/usr/bin/env bash
# Builds the Debian package: contrib/build-deb.sh [OUTDIR]   (default: build/deb)
#
# dpkg-buildpackage with debhelper, in a clean copy of the source tree with contrib/debian/
# as debian/: the package gets what every Debian service gets from dh (maintainer scripts
# that create the user, run tmpfiles, enable, start and restart the unit; Depends computed
# from the binary's libraries; /etc files as conffiles; hardening build flags), and nothing
# from a developer's build directories can leak into it.
#
# Missing build dependencies are installed with apt-get (as root), like ./dev does.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
OUT=$(readlink -m "${1:-build/deb}")

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Build-Depends field of contrib/debian/control, continuation lines joined.
build_depends() {
  awk '/^Build-Depends:/ {f = 1; sub(/^Build-Depends:/, ""); print; next}
       f && /^[ \t]/ {print; next}
       {f = 0}' contrib/debian/control | tr -s ' \t\n' ' ' | sed 's/,[ ]*$//'
}

ensure_build_deps() {
  command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null &&
    dpkg-checkbuilddeps contrib/debian/control >/dev/null 2>&1 && return 0
  say "installing build dependencies"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get satisfy -y -q --no-install-recommends \
    "dpkg-dev, debhelper, $(build_depends)"
}

# The working tree as git sees it (tracked and new files, minus ignored ones), or, without
# git, everything but build directories.
stage_sources() {
  local dest="$1"
  mkdir -p "$dest"
  if [ -d .git ] && command -v git >/dev/null; then
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        case "$f" in build*/*|contrib/debian/*) continue ;; esac
        [ -e "$f" ] && printf '%s\0' "$f"
      done | tar --null -T - -cf - | tar -xf - -C "$dest"
  else
    tar --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$dest"
  fi
  cp -r contrib/debian "$dest/debian"
}

check_versions() {
  local meson_version deb_version
  meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n1)
  deb_version=$(dpkg-parsechangelog -l contrib/debian/changelog -S Version)
  [ "$meson_version" = "$deb_version" ] ||
    die "meson.build says version $meson_version, contrib/debian/changelog says $deb_version; add a changelog entry"
}

main() {
  ensure_build_deps
  check_versions
  work=$(mktemp -d /tmp/xcg-deb.XXXXXX)
  trap 'rm -rf --one-file-system "$work"' EXIT
  say "staging the source tree"
  stage_sources "$work/xcg"
  say "dpkg-buildpackage (log: $OUT/build.log)"
  mkdir -p "$OUT"
  local jobs
  jobs=$(nproc)
  # Unit and integration tests run in ./dev test, not here.
  if ! (cd "$work/xcg" &&
        DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc) >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    die "dpkg-buildpackage failed; the whole log is $OUT/build.log"
  fi
  rm -f "$OUT"/xcg_*.deb "$OUT"/xcg-dbgsym_*.deb "$OUT"/xcg_*.buildinfo "$OUT"/xcg_*.changes
  cp "$work"/xcg_*.deb "$work"/xcg_*.buildinfo "$work"/xcg_*.changes "$OUT/"
  cp "$work"/xcg-dbgsym_*.deb "$OUT/" 2>/dev/null || true
  local deb
  deb=$(ls "$OUT"/xcg_*.deb)
  say "built $deb"
  dpkg-deb --info "$deb" | sed -n 's/^ \(Version\|Depends\):/  \1:/p'
}

main "$@"
