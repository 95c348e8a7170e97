#!/usr/bin/env bash
# Builds the libFuzzer targets into build/fuzz/ and runs each for SECONDS (default 60) on a
# copy of its seed corpus. Exits 1 if any target found a crash, a leak, a timeout or an
# out-of-memory input (saved in build/fuzz/artifacts/), 2 if the build failed.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]   TARGET: ipc, config, public_key, menu,
#                                             console_input (default: all)
#   tests/fuzz/run.sh --regression            each target runs every file of its committed
#                                             corpus once, no fuzzing (seconds; ./dev test)
#   tests/fuzz/run.sh --build                 only build
#   tests/fuzz/run.sh --seed-ipc              rewrite tests/fuzz/corpus/ipc/ from real messages
#                                             (after a change to the IPC format)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

FUZZ=tests/fuzz
OUT=build/fuzz
CXX=clang++-14
PACKAGES=(clang-14 libclang-rt-14-dev libyaml-cpp-dev libfmt-dev libssl-dev libssh-dev libexpected-dev)
# fuzzer-no-link: coverage instrumentation everywhere, libFuzzer's main() only in the link.
CXXFLAGS=(-std=gnu++20 -g -O1 -I. -fno-omit-frame-pointer
          -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
LDFLAGS=(-fsanitize=fuzzer,address,undefined)
LIBS=(-lyaml-cpp -lssh -lcrypto -lfmt)
# The code under test, linked into every target.
SOURCES=(gateway/ipc/ipc.cc base/*.cc config/*.cc menu/*.cc)

# name:corpus: the corpus folder is tests/fuzz/corpus/NAME, the dictionary tests/fuzz/NAME.dict.
TARGETS=(ipc_decode_fuzz:ipc config_fuzz:config public_key_fuzz:public_key menu_fuzz:menu
         console_input_fuzz:console_input)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

# True if OBJ must be rebuilt: missing, or older than anything its depfile lists.
stale() {
  local obj=$1 dep=$2 f
  [ -f "$obj" ] && [ -f "$dep" ] || return 0
  for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
    [ -e "$f" ] && [ ! "$f" -nt "$obj" ] || return 0
  done
  return 1
}

object_of() { local s=${1//\//_}; echo "$OUT/obj/${s%.cc}.o"; }

compile() {
  local src=$1 obj
  obj=$(object_of "$src")
  echo "  $CXX $src"
  "$CXX" "${CXXFLAGS[@]}" -MMD -MF "${obj%.o}.d" -c "$src" -o "$obj"
}

build() {
  ensure_packages
  mkdir -p "$OUT/obj"
  local all=("${SOURCES[@]}") t src failed="$OUT/obj/FAILED"
  for t in "${TARGETS[@]}"; do all+=("$FUZZ/${t%%:*}.cc"); done
  rm -f "$failed"
  # Two compilers at a time: the machine has two cores.
  for src in "${all[@]}"; do
    local obj
    obj=$(object_of "$src")
    stale "$obj" "${obj%.o}.d" || continue
    (compile "$src" || touch "$failed") &
    [ "$(jobs -rp | wc -l)" -lt "$(nproc)" ] || wait -n || true
  done
  wait
  if [ -f "$failed" ]; then
    echo "fuzz build failed" >&2
    exit 2
  fi
  local lib_objs=()
  for src in "${SOURCES[@]}"; do lib_objs+=("$(object_of "$src")"); done
  for t in "${TARGETS[@]}"; do
    local name=${t%%:*} objs o relink=0
    objs=("$(object_of "$FUZZ/$name.cc")" "${lib_objs[@]}")
    [ -f "$OUT/$name" ] || relink=1
    for o in "${objs[@]}"; do [ "$o" -nt "$OUT/$name" ] && relink=1; done
    [ $relink -eq 1 ] || continue
    echo "  link $OUT/$name"
    "$CXX" "${LDFLAGS[@]}" "${objs[@]}" "${LIBS[@]}" -o "$OUT/$name" || exit 2
  done
}

seed_ipc() {
  ensure_packages
  mkdir -p "$OUT"
  "$CXX" -std=gnu++20 -g -I. "$FUZZ/make_ipc_corpus.cc" "${SOURCES[@]}" "${LIBS[@]}" \
    -o "$OUT/make_ipc_corpus"
  rm -f "$FUZZ"/corpus/ipc/*
  "$OUT/make_ipc_corpus" "$FUZZ/corpus/ipc"
  ls "$FUZZ/corpus/ipc"
}

# A value from libFuzzer's -print_final_stats block, or "?".
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1 | grep . || echo "?"; }

# Runs one target; prints one summary line and, on a finding, the report. Returns non-zero on
# a finding.
run_target() {
  local name=$1 corpus=$2 seconds=$3
  local work="$OUT/work/$name" log="$OUT/logs/$name.log" args rc=0
  mkdir -p "$work" "$OUT/artifacts" "$OUT/logs"
  # The committed seeds plus whatever earlier runs found; `rm -rf build/fuzz/work` starts over.
  cp -f "$FUZZ/corpus/$corpus"/* "$work/"
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$OUT/artifacts/$name-")
  [ -f "$FUZZ/$corpus.dict" ] && args+=(-dict="$FUZZ/$corpus.dict")
  # ASan's own memory limit sits below libFuzzer's: libFuzzer's out-of-memory report first
  # profiles the heap, which took over ten minutes with 2 GiB of small blocks; ASan's report
  # saves the input at once. The outer timeout is a last resort against a hung report.
  ASAN_OPTIONS=detect_leaks=1:hard_rss_limit_mb=1900 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timeout -k 10 $((seconds + 300)) \
    "$OUT/$name" "${args[@]}" "$work" >"$log" 2>&1 || rc=$?

  local runs execs cov
  runs=$(stat_of number_of_executed_units "$log")
  execs=$(stat_of average_exec_per_sec "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  local found
  found=$(sed -n 's/.*Test unit written to //p' "$log")
  if [ $rc -eq 0 ] && [ -z "$found" ]; then
    printf '%-16s %8s exec/s  %10s runs  cov %-5s  no crash\n' "$name" "$execs" "$runs" "${cov:-?}"
    return 0
  fi
  printf '%-16s %8s exec/s  %10s runs  cov %-5s  FOUND A CRASH (exit %d)\n' \
    "$name" "$execs" "$runs" "${cov:-?}" "$rc"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "    the fuzzer hung and was killed; no input saved"; fi
  grep -E '^==[0-9]+== ?ERROR|runtime error:|fuzz property failed|uncaught exception|hard rss limit|^SUMMARY' \
    "$log" | head -n 10 | sed 's/^/    /'
  local f
  for f in $found; do
    echo "    input: $f"
    echo "    reproduce: $OUT/$name $f"
  done
  echo "    log: $log"
  return 1
}

# Runs each target once on every file of its committed corpus: what was found or seeded
# once must keep passing. Prints one line per target; exits 1 if any failed.
regression() {
  say "building fuzz targets in $OUT/"
  build
  say "replaying each corpus"
  local t name failed=0 log
  mkdir -p "$OUT/logs"
  for t in "${TARGETS[@]}"; do
    name=${t%%:*}
    log="$OUT/logs/$name.regression.log"
    local files=("$FUZZ/corpus/${t#*:}"/*)
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        timeout -k 10 300 "$OUT/$name" -timeout=10 "${files[@]}" >"$log" 2>&1; then
      printf '%-20s %4d inputs  ok\n' "$name" "${#files[@]}"
    else
      printf '%-20s %4d inputs  FAILED (log: %s)\n' "$name" "${#files[@]}" "$log"
      grep -E '^Running: |^==[0-9]+== ?ERROR|runtime error:|fuzz property failed|uncaught exception|^SUMMARY' \
        "$log" | grep -B1 -v '^Running: ' | head -n 10 | sed 's/^/    /'
      failed=$((failed + 1))
    fi
  done
  [ $failed -eq 0 ]
}

main() {
  case "${1:-}" in
    --build) build; return ;;
    --regression) regression; return ;;
    --seed-ipc) seed_ipc; return ;;
  esac
  local seconds=60
  if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
  fi
  local wanted=("$@") t selected=()
  for t in "${TARGETS[@]}"; do
    if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" ${t#*:} "* ]]; then selected+=("$t"); fi
  done
  if [ ${#selected[@]} -eq 0 ]; then
    echo "usage: $0 [SECONDS] [ipc|config|public_key|menu|console_input ...] | --regression | --build" >&2
    exit 2
  fi
  say "building fuzz targets in $OUT/"
  build
  say "fuzzing each target for $seconds s"
  local findings=0
  for t in "${selected[@]}"; do
    run_target "${t%%:*}" "${t#*:}" "$seconds" || findings=$((findings + 1))
  done
  if [ $findings -gt 0 ]; then
    say "$findings target(s) found a crash; inputs are in $OUT/artifacts/"
    exit 1
  fi
  say "no crash found"
}

main "$@"
