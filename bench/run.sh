#!/usr/bin/env bash
# xcg against the classic OpenSSH forced-command recipe (docs/performance.md). As root:
#   bench/run.sh [--quick]
# Builds an optimised build (build-bench/, or $XCG_BENCH_BUILD), installs what is missing
# (openssh-server, sudo, gnuplot-nox), runs bench/bench.py, and prints the table. Results:
# build/bench/results.json and build/bench/chart.png. Everything listens on 127.0.0.1; the
# baseline's throwaway user and sudoers drop-in are removed however the run ends.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

QUICK=()
case "${1:-}" in
  --quick) QUICK=(--quick) ;;
  "") ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
BUILD="${XCG_BENCH_BUILD:-build-bench}"
OUT=build/bench
PACKAGES=(openssh-server sudo gnuplot-nox)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/run.sh: run as root (private sshd, sudoers drop-in, xcg's sandbox)" >&2
  exit 2
fi

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  # openssh-server would start the system's sshd; the benchmark runs its own. A policy-rc.d
  # that says no (exit 101) keeps the package from starting any service while it installs.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    added=1
  fi
  local rc=0
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } || rc=$?
  [ $added -eq 1 ] && rm -f "$policy"
  return $rc
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    say "configuring $BUILD/ (release: -O3, no sanitizers)"
    meson setup "$BUILD" -Dbuildtype=release -Db_sanitize=none >/dev/null
  fi
  say "building $BUILD/"
  ninja -C "$BUILD" xcg xcg-session xcg-web bench/pty_attach bench/guest_host bench/xcg-loadgen
}

cleanup() {
  # bench.py cleans up after itself; this catches a bench.py that was killed outright.
  python3 bench/bench.py cleanup || true
}

ensure_packages
id xcg >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
  --shell /usr/sbin/nologin xcg
build
# 1000 sessions need more descriptors than the default 1024 (the broker holds several per
# session and per domain); bench.py says so if the hard limit is too low.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
trap cleanup EXIT
# bench.py runs in the background so that a signal to this script reaches it at once (bash
# runs traps only between commands); it stops everything it started and exits.
python3 bench/bench.py run --build "$BUILD" --out "$OUT" "${QUICK[@]}" &
BENCH_PID=$!
trap 'kill -TERM "$BENCH_PID" 2>/dev/null || true' INT TERM HUP
rc=0
wait "$BENCH_PID" || rc=$?
while kill -0 "$BENCH_PID" 2>/dev/null; do  # a trapped signal ends `wait` early
  rc=0
  wait "$BENCH_PID" || rc=$?
done
exit "$rc"
