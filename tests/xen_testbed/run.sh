#!/usr/bin/env bash
# run.sh [--keep] [PYTEST ARGS...] - the real-Xen test bed from start to end: build the dom0
# image (cached), boot QEMU with Xen, dom0 and two PV guests, install XCG_BINARY in dom0, run
# the pytest tests with the host's OpenSSH client, and stop QEMU again (also on failure or
# Ctrl-C). --keep leaves the test bed running for debugging (testbed.sh ssh/console/stop).
# Exits non-zero if anything failed; the last line is pytest's summary, or
# "0 passed, 1 failed" when the test bed could not be built or booted.
set -uo pipefail
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
TESTBED=$HERE/testbed.sh
RUN=${XCG_TESTBED_RUN:-/tmp/xcg-testbed}
export XCG_TESTBED_RUN=$RUN
export XCG_BINARY=${XCG_BINARY:-$HERE/../../build/xcg}
TEST_TIMEOUT=${XCG_TESTBED_TEST_TIMEOUT:-1800}

keep=0
pytest_args=()
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    *) pytest_args+=("$a") ;;
  esac
done

SUMMARY=
finish() {
  if ((keep)); then
    echo "test bed left running: $TESTBED ssh | console | status | stop" >&2
  else
    "$TESTBED" stop 9>&-
  fi
  # The closing line comes last, whatever was logged since pytest ended.
  if [[ -n $SUMMARY ]]; then echo "$SUMMARY"; fi
}

timing() { echo "TIMING $1 $(($(date +%s) - $2))s" | tee -a "$RUN/timings" >&2; }
setup_failed() { echo "xen test bed: $1 failed" >&2; SUMMARY="0 passed, 1 failed"; exit 1; }

mkdir -p "$RUN"
exec 9>"$RUN.lock"   # one run per run directory; set XCG_TESTBED_RUN for another
if ! flock -w 1800 9; then echo "xen test bed: $RUN is busy" >&2; echo "0 passed, 1 failed"; exit 1; fi
trap finish EXIT      # from here on, the QEMU of this run directory is ours to stop
trap 'exit 130' INT TERM
: >"$RUN/timings"
t=$(date +%s)
"$TESTBED" build 9>&- || setup_failed build
timing build "$t"
"$TESTBED" stop 9>&-   # a test bed left by an earlier --keep: boot afresh
t=$(date +%s)
"$TESTBED" boot 9>&- || setup_failed boot   # QEMU must not inherit the lock
timing boot "$t"
t=$(date +%s)
timeout --kill-after=30 "$TEST_TIMEOUT" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  -o console_output_style=classic -rs --durations=5 "$HERE" "${pytest_args[@]}" 2>&1 | tee "$RUN/pytest.log"
rc=${PIPESTATUS[0]}
SUMMARY=$(tail -n1 "$RUN/pytest.log")
if ((rc == 124 || rc == 137)); then echo "xen test bed: pytest timed out" >&2; SUMMARY="0 passed, 1 failed"; fi
timing tests "$t"
exit "$rc"
