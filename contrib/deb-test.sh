#!/usr/bin/env bash
# The Debian package on a fresh Debian 12: contrib/deb-test.sh [--deb FILE]   (as root)
#
# Builds the .deb (contrib/build-deb.sh; --deb uses a built one), unpacks a minimal bookworm
# (debootstrap --variant=minbase from this machine's apt mirror, cached per day and recipe in
# /var/cache/xcg-deb-test), installs the package there with `apt-get install ./xcg_*.deb` so
# that apt resolves its dependencies, and checks what a fresh install must give: the xcg user,
# the conffile /etc/xcg/xcg.yaml that `xcg check` accepts, the unit (enabled, and passing
# `systemd-analyze verify`), the directories, the man pages. Then, in two ways:
#  1. by hand, as on a machine without systemd as PID 1 (like this one): the unit's ExecStart
#     in the chroot, on a free loopback port, with a fake NOTIFY_SOCKET; it waits for READY=1,
#     fetches the host key with ssh-keyscan from the host (a session process must chroot,
#     drop to xcg and finish a key exchange for that) and stops it with SIGTERM;
#  2. for real: it boots the same root with systemd as PID 1 (systemd-nspawn, sharing the
#     host's network) and checks the unit itself: started at boot, reachable, its sandbox
#     applied (capabilities, no_new_privs, seccomp, read-only system), reload and stop.
# Finally it purges the package.
#
# Everything mounted (proc, dev, run) lives in a private mount and PID namespace: when the test
# ends, however it ends, the kernel unmounts it all and kills whatever was left running. Every
# wait has a deadline. The mirror's host name is never printed: logs are scrubbed.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."

SUITE=bookworm
CACHE=/var/cache/xcg-deb-test
# Bump when the base image recipe below changes.
RECIPE="v1 debootstrap --variant=minbase $SUITE; main, updates, security"
PYTHON=/usr/bin/python3

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'deb-test: %s\n' "$*" >&2; exit 1; }

START=$SECONDS
TIMES=()
phase_start=$SECONDS
phase_done() {
  TIMES+=("$(printf '%-34s %4ds' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}

ensure_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v unshare >/dev/null || missing+=(util-linux)
  command -v ssh-keyscan >/dev/null || missing+=(openssh-client)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v lintian >/dev/null || missing+=(lintian)
  [ -x "$PYTHON" ] || missing+=(python3)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# "SUITE URI" for every deb source of this machine (one-line and deb822 formats).
host_apt_sources() {
  "$PYTHON" - /etc/apt/sources.list /etc/apt/sources.list.d/* <<'PY'
import re, sys
for path in sys.argv[1:]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".list"):
        for line in text.splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 4 and line[0] == "deb" and "main" in line[3:]:
                print(line[2], line[1])
    elif path.endswith(".sources"):
        for para in re.split(r"\n\s*\n", text):
            fields, key = {}, None
            for line in para.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "main" not in fields.get("components", "").split():
                continue
            for suite in fields.get("suites", "").split():
                for uri in fields.get("uris", "").split():
                    print(suite, uri)
PY
}

detect_mirrors() {
  local sources
  sources=$(host_apt_sources)
  MIRROR=$(awk -v s="$SUITE" '$1 == s {print $2; exit}' <<<"$sources")
  UPDATES_MIRROR=$(awk -v s="$SUITE-updates" '$1 == s {print $2; exit}' <<<"$sources")
  SECURITY_MIRROR=$(awk -v s="$SUITE-security" '$1 == s {print $2; exit}' <<<"$sources")
  [ -n "$MIRROR" ] || die "no '$SUITE main' apt source on this machine"
}

# Copies stdin to stdout with the mirrors' host names replaced.
scrub() {
  local args=() m h
  for m in "${MIRROR:-}" "${UPDATES_MIRROR:-}" "${SECURITY_MIRROR:-}"; do
    h=${m#*://}; h=${h%%/*}; h=${h##*@}
    [ -n "$h" ] && args+=(-e "s|${h//./\\.}|<mirror>|g")
  done
  if [ ${#args[@]} -gt 0 ]; then sed -u "${args[@]}"; else cat; fi
}

# Runs a command with its output scrubbed into a log; on failure shows the log's end.
logged() {
  local log="$1"; shift
  if ! "$@" 2>&1 | scrub >>"$log"; then
    tail -n 30 "$log" >&2
    return 1
  fi
}

WORK=""
cleanup() {
  [ -n "$WORK" ] && [ -d "$WORK" ] || return 0
  # The mounts were made in a private namespace that is gone; refuse to delete anything that
  # is still a mount point on this side.
  if grep -q " $WORK/" /proc/self/mountinfo; then
    echo "deb-test: something is still mounted under $WORK; not deleting it" >&2
    return 0
  fi
  rm -rf --one-file-system "$WORK"
}
# The cached minimal bookworm, or a new one. The key holds the day (so the base is at most a
# day behind the mirror) and a hash of the recipe and the sources (not the sources themselves).
base_tarball() {
  local key tarball tmp
  key=$(printf '%s\n%s %s %s\n' "$RECIPE" "$MIRROR" "$UPDATES_MIRROR" "$SECURITY_MIRROR" |
        sha256sum | cut -c1-12)
  tarball="$CACHE/base-$SUITE-$(date -u +%Y%m%d)-$key.tar.gz"
  TARBALL=$tarball
  if [ -f "$tarball" ]; then
    BASE_CACHED="cached"
    return 0
  fi
  BASE_CACHED="new"
  mkdir -p "$CACHE"
  tmp="$WORK/base"
  # debootstrap mounts proc and sys in the target: keep them in a namespace of their own.
  say "debootstrap $SUITE (cached afterwards in $CACHE)"
  logged "$WORK/debootstrap.log" timeout 900 \
    unshare --mount --propagation private \
    debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" ||
    die "debootstrap failed"
  {
    echo "deb $MIRROR $SUITE main"
    [ -n "$UPDATES_MIRROR" ] && echo "deb $UPDATES_MIRROR $SUITE-updates main"
    [ -n "$SECURITY_MIRROR" ] && echo "deb $SECURITY_MIRROR $SUITE-security main"
  } >"$tmp/etc/apt/sources.list"
  tar --numeric-owner -C "$tmp" -czf "$tarball.tmp.$$" .
  mv "$tarball.tmp.$$" "$tarball"
  rm -rf --one-file-system "$tmp"
  find "$CACHE" -maxdepth 1 -name "base-$SUITE-*.tar.gz" ! -name "$(basename "$tarball")" -delete
}

main() {
  ensure_tools
  trap cleanup EXIT
  WORK=$(mktemp -d /var/tmp/xcg-deb-test.XXXXXX)
  chmod 0755 "$WORK"

  if [ -z "$DEB" ]; then
    say "building the package"
    contrib/build-deb.sh build/deb
    DEB=$(ls "$PWD"/build/deb/xcg_*.deb)
    phase_done "build the .deb"
  fi
  [ -f "$DEB" ] || die "no package at $DEB"
  # Debian's own checks of a package: any error or warning fails the test.
  local lint
  lint=$(lintian "$DEB" 2>&1 | grep -E '^[EW]: ' || true)
  if [ -n "$lint" ]; then
    printf '%s\n' "$lint"
    LINTIAN_FAILED=1
  fi
  echo "  lintian: ${lint:+not }clean"
  phase_done "lintian"

  detect_mirrors
  say "base system: minimal Debian 12 ($SUITE)"
  base_tarball
  mkdir "$WORK/root"
  tar --numeric-owner -C "$WORK/root" -xzf "$TARBALL"
  phase_done "base system ($BASE_CACHED)"

  cp "$DEB" "$WORK/root/tmp/"
  mkdir -p "$CACHE/apt-archives/partial" "$CACHE/apt-lists/partial"
  say "installing $(basename "$DEB") in the chroot, then checking it"
  local rc=0 st
  set +e
  timeout 1200 unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
    "$SELF" --inside "$WORK" "$(basename "$DEB")" 2>&1 | scrub
  st=("${PIPESTATUS[@]}")
  set -e
  [ "${st[0]}" -eq 0 ] && [ "${st[1]}" -eq 0 ] || rc=1
  phase_done "install, run by hand, boot, purge"

  echo
  printf '  %s\n' "${TIMES[@]}"
  printf '  %-34s %4ds\n' "total" $((SECONDS - START))
  if [ "$rc" -ne 0 ] || [ -n "${LINTIAN_FAILED:-}" ]; then
    die "FAILED"
  fi
  say "deb test passed"
}


# ---- Inside the private mount and PID namespace (the script runs itself with --inside) ----

FAILS=0
check() {
  local name="$1"; shift
  if "$@"; then
    printf '  ok    %s\n' "$name"
  else
    printf '  FAIL  %s\n' "$name"
    FAILS=$((FAILS + 1))
  fi
}

# Polls `command...` until it succeeds or `seconds` pass.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

in_root() { chroot "$R" "$@"; }
mode_owner_is() { [ "$(stat -c '%a %U %G' "$R$1")" = "$2" ]; }
gone() { [ ! -e "$R$1" ] && [ ! -L "$R$1" ]; }
running() { [ -d "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat"; }

user_is_a_system_user() {
  local entry uid shell home
  entry=$(in_root getent passwd xcg) || return 1
  IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
  [ "$uid" -lt 1000 ] && [ "$uid" -gt 0 ] && [ "$shell" = /usr/sbin/nologin ] &&
    [ "$home" = /nonexistent ]
}

is_conffile() { in_root dpkg-query -W -f='${Conffiles}\n' xcg | grep -q "^ $1 "; }

example_config_passes_check() {
  local out rc=0
  out=$(in_root xcg check --config /etc/xcg/xcg.yaml 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  [ "$rc" -eq 0 ]
}

unit_verifies() {
  local out
  # --man=no: minbase has no man-db; man_pages_render checks the pages.
  out=$(in_root systemd-analyze verify --man=no /lib/systemd/system/xcg.service 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}

# From the host, whose man-db can look the Documentation= pages up in the chroot.
documentation_resolves() {
  local out
  out=$(MANPATH="$R/usr/share/man" systemd-analyze verify --root="$R" /lib/systemd/system/xcg.service 2>&1) ||
    { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}

# systemd's own rating of the sandbox, for the record (lower is better).
print_exposure() {
  systemd-analyze security --offline=true --root="$R" xcg.service 2>/dev/null | tail -n 1 |
    sed 's/^/    systemd-analyze security: /' || true
}

man_pages_render() {
  local page
  for page in man8/xcg.8.gz man5/xcg.yaml.5.gz; do
    [ -s "$R/usr/share/man/$page" ] || return 1
    # groff warnings (-ww) on the pages as installed: bad macros, bad escapes.
    [ -z "$(zcat "$R/usr/share/man/$page" | groff -man -ww -z 2>&1)" ] || {
      zcat "$R/usr/share/man/$page" | groff -man -ww -z; return 1; }
  done
}

notify_received() { grep -qx "$1" "$WORK/notify.log" 2>/dev/null; }

# A fake service manager: receives sd_notify datagrams on $R/run/xcg-test-notify, one per
# line in notify.log (newlines in a datagram become lines too).
start_notify_listener() {
  "$PYTHON" - "$R/run/xcg-test-notify" "$WORK/notify.log" <<'PY' &
import socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
deadline = time.monotonic() + 300
with open(sys.argv[2], "a") as log:
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        log.write(data.decode(errors="replace") + "\n")
        log.flush()
PY
  NOTIFY_PID=$!
  wait_for 10 test -S "$R/run/xcg-test-notify"
}

serve_port() {
  sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$WORK/serve.log" | head -n1
}

# The unit's ExecStart, in the chroot, with the environment and umask systemd would give it.
start_serve() {
  local line
  line=$(sed -n 's/^ExecStart=//p' "$R/lib/systemd/system/xcg.service")
  read -ra EXEC <<<"$line"
  echo "    ExecStart: ${EXEC[*]}"
  : >"$WORK/serve.log"
  (umask 0027
   exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
     NOTIFY_SOCKET=/run/xcg-test-notify chroot "$R" "${EXEC[@]}") >"$WORK/serve.log" 2>&1 &
  SERVE_PID=$!
}

keyscan_matches_host_key() {
  local expected got
  expected=$(ssh-keygen -y -f "$R/var/lib/xcg/ssh_host_ed25519_key" | cut -d' ' -f2) || return 1
  got=$(ssh-keyscan -T 5 -t ed25519 -p "$PORT" 127.0.0.1 2>/dev/null | cut -d' ' -f3)
  echo "    ssh-keyscan 127.0.0.1:$PORT: ${got:0:24}..."
  [ -n "$got" ] && [ "$got" = "$expected" ]
}

hostkeys_lists_the_key() {
  local out expected
  expected=$(ssh-keygen -y -f "$R/var/lib/xcg/ssh_host_ed25519_key" | cut -d' ' -f2) || return 1
  out=$(in_root xcg hostkeys --config /etc/xcg/xcg.yaml 2>&1) || { echo "$out"; return 1; }
  [[ "$out" == *"$expected"* ]] && [[ "$out" == *" IN SSHFP "* ]]
}

no_error_lines() { ! grep -E '^[0-9T:.-]+Z error ' "$WORK/serve.log"; }

stop_serve() {
  kill -TERM "$SERVE_PID"
  if ! wait_for 15 eval '! running "$SERVE_PID"'; then
    kill -KILL "$SERVE_PID"
    return 1
  fi
  wait "$SERVE_PID"
}

# ---- The same root booted with systemd as PID 1 (systemd-nspawn), to run the real unit ----

# The container's systemd: the one process called systemd in this PID namespace that
# descends from nspawn.
container_init() {
  local p q
  for p in $(pgrep -x systemd); do
    q=$p
    while [ "$q" -gt 1 ]; do
      [ "$q" = "$NSPAWN_PID" ] && { echo "$p"; return 0; }
      q=$(awk '/^PPid:/ {print $2}' "/proc/$q/status" 2>/dev/null) || break
      [ -n "$q" ] || break
    done
  done
  return 1
}

in_container() { nsenter -t "$INIT" -a "$@"; }

booted() {
  local state
  state=$(in_container systemctl is-system-running 2>/dev/null) || true
  [ "$state" = running ] || [ "$state" = degraded ]
}

unit_port() {
  in_container journalctl -u xcg -o cat --no-pager 2>/dev/null |
    sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' | tail -n1
}

# The capability numbers of what the unit's CapabilityBoundingSet= names (linux/capability.h).
expected_cap_mask() {
  local -A bit=([CAP_CHOWN]=0 [CAP_DAC_OVERRIDE]=1 [CAP_DAC_READ_SEARCH]=2 [CAP_FOWNER]=3
                [CAP_KILL]=5 [CAP_SETGID]=6 [CAP_SETUID]=7 [CAP_NET_BIND_SERVICE]=10
                [CAP_NET_ADMIN]=12 [CAP_IPC_LOCK]=14 [CAP_SYS_CHROOT]=18 [CAP_SYS_ADMIN]=21
                [CAP_SYS_RESOURCE]=24)
  local mask=0 name
  for name in $(sed -n 's/^CapabilityBoundingSet=//p' "$R/lib/systemd/system/xcg.service"); do
    [ -n "${bit[$name]:-}" ] || { echo "unknown capability $name" >&2; return 1; }
    mask=$((mask | (1 << ${bit[$name]})))
  done
  printf '%016x\n' "$mask"
}

main_pid() { in_container systemctl show -P MainPID xcg; }

# What the unit's sandbox gives the broker, read from the host through its /proc entry.
sandbox_applied() {
  local pid host_pid want
  pid=$(main_pid) && [ "$pid" -gt 0 ] || return 1
  # The container's PID namespace is nested in ours: find the same process here.
  host_pid=$(awk -v pid="$pid" '$1 == "NSpid:" && NF >= 3 && $NF == pid {
                 split(FILENAME, part, "/"); print part[3]; exit}' /proc/[0-9]*/status 2>/dev/null)
  [ -n "$host_pid" ] || { echo "    no process for MainPID $pid"; return 1; }
  want=$(expected_cap_mask) || return 1
  local bnd nnp seccomp
  bnd=$(awk '/^CapBnd:/ {print $2}' "/proc/$host_pid/status")
  nnp=$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$host_pid/status")
  seccomp=$(awk '/^Seccomp:/ {print $2}' "/proc/$host_pid/status")
  echo "    MainPID: CapBnd $bnd (want $want), NoNewPrivs $nnp, Seccomp $seccomp"
  [ "$bnd" = "$want" ] && [ "$nnp" = 1 ] && [ "$seccomp" = 2 ] || return 1
  local d
  for d in /etc /run /var/lib /usr; do
    if nsenter -t "$host_pid" -m -- sh -c "touch $d/.xcg-probe 2>/dev/null && rm -f $d/.xcg-probe"; then
      echo "    $d is writable for the service"; return 1
    fi
  done
  for d in /run/xcg /var/lib/xcg /var/log/xcg; do
    nsenter -t "$host_pid" -m -- sh -c "touch $d/.xcg-probe && rm -f $d/.xcg-probe" ||
      { echo "    $d is not writable for the service"; return 1; }
  done
}

reload_works() {
  in_container systemctl reload xcg || return 1
  wait_for 10 eval 'in_container journalctl -u xcg -o cat --no-pager | grep -q "reloaded .*(SIGHUP)"' &&
    in_container xcg ctl status >/dev/null
}

stops_cleanly() {
  in_container systemctl stop xcg || return 1
  [ "$(in_container systemctl show -P Result xcg)" = success ] &&
    [ "$(in_container systemctl show -P ActiveState xcg)" = inactive ]
}

boot_checks() {
  echo "  booting the root with systemd (systemd-nspawn), where xcg.service starts as on a server"
  in_root env DEBIAN_FRONTEND=noninteractive timeout 300 \
    apt-get install -y -q --no-install-recommends systemd-sysv >>"$WORK/apt.log" 2>&1 ||
    { tail -n 20 "$WORK/apt.log"; FAILS=$((FAILS + 1)); return 0; }
  rm -f "$R/usr/sbin/policy-rc.d"
  umount -R "$R/dev" "$R/proc" "$R/run" "$R/var/cache/apt/archives" "$R/var/lib/apt/lists"
  systemd-nspawn -q -D "$R" -b --register=no --keep-unit --console=passive \
    >"$WORK/nspawn.log" 2>&1 </dev/null &
  NSPAWN_PID=$!
  INIT=""
  wait_for 30 eval 'INIT=$(container_init)' || true
  check "the container boots (systemctl is-system-running)" \
    eval '[ -n "$INIT" ] && wait_for 90 booted'
  if [ -z "$INIT" ] || ! booted; then
    sed 's/^/    | /' "$WORK/nspawn.log" | tail -n 20
  else
    { in_container systemctl --failed --no-legend --plain || true; } | sed 's/^/    failed unit: /'
    check "xcg.service is active after boot (Type=notify: READY=1 reached systemd)" \
      eval '[ "$(in_container systemctl is-active xcg)" = active ]'
    echo "    status: $(in_container systemctl show -P StatusText xcg)"
    PORT=$(unit_port)
    check "ssh-keyscan reaches it (sessions chroot and drop privileges in the sandbox)" \
      eval '[ -n "$PORT" ] && keyscan_matches_host_key'
    check "the unit's sandbox: capabilities, no_new_privs, seccomp, read-only system" sandbox_applied
    check "systemctl reload xcg (SIGHUP), then xcg ctl status" reload_works
    check "systemctl stop xcg: clean stop" stops_cleanly
    { in_container journalctl -u xcg -o short-monotonic --no-pager || true; } |
      sed 's/^/    | /' | tail -n 12
    # SIGRTMIN+4: systemd's "power off".
    kill -s RTMIN+4 "$INIT" || true
  fi
  wait_for 30 eval '! running "$NSPAWN_PID"' || kill -KILL "$NSPAWN_PID"
  wait "$NSPAWN_PID" || true
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
}

inside() {
  WORK="$1"
  local deb="$2"
  R="$WORK/root"
  local step_start=$SECONDS
  # No propagation back to the host (unshare made everything private); the namespace's end
  # unmounts all of this anyway, the trap just does it in order.
  trap '[ -z "${NSPAWN_PID:-}" ] || kill -KILL "$NSPAWN_PID" 2>/dev/null || true; umount -R "$R/dev" "$R/proc" "$R/run" "$R/var/cache/apt/archives" "$R/var/lib/apt/lists" 2>/dev/null || true' EXIT
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$R/run"
  mkdir -m 1777 "$R/run/lock"
  # apt's downloads and lists survive between runs: a second run downloads almost nothing.
  mount --bind "$CACHE/apt-archives" "$R/var/cache/apt/archives"
  mount --bind "$CACHE/apt-lists" "$R/var/lib/apt/lists"
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  # Like a docker image: packages may not start services here.
  printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
  chmod 0755 "$R/usr/sbin/policy-rc.d"

  echo "  apt-get update; apt-get install ./$deb"
  in_root timeout 300 apt-get update -q >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log"; return 1; }
  if ! in_root env DEBIAN_FRONTEND=noninteractive timeout 600 \
       apt-get install -y -q --no-install-recommends "/tmp/$deb" >>"$WORK/apt.log" 2>&1; then
    tail -n 30 "$WORK/apt.log"
    return 1
  fi
  echo "    installed: $(in_root dpkg-query -W -f='${Package} ${Version}' xcg) with $(grep -c '^Setting up' "$WORK/apt.log") packages in $((SECONDS - step_start))s"

  check "xcg is a system user with no shell" user_is_a_system_user
  check "/etc/xcg/xcg.yaml is a conffile, mode 640" \
    eval 'is_conffile /etc/xcg/xcg.yaml && mode_owner_is /etc/xcg/xcg.yaml "640 root root"'
  check "xcg check --config /etc/xcg/xcg.yaml" example_config_passes_check
  check "the session program /usr/libexec/xcg/xcg-session, mode 755" \
    mode_owner_is /usr/libexec/xcg/xcg-session "755 root root"
  check "the browser console program /usr/libexec/xcg/xcg-web, mode 755" \
    mode_owner_is /usr/libexec/xcg/xcg-web "755 root root"
  check "unit installed and enabled" \
    eval 'test -f "$R/lib/systemd/system/xcg.service" && test -L "$R/etc/systemd/system/multi-user.target.wants/xcg.service"'
  check "systemd-analyze verify xcg.service (in the chroot)" unit_verifies
  check "its Documentation= man pages resolve" documentation_resolves
  print_exposure
  check "sysusers.d and tmpfiles.d files" \
    eval 'test -f "$R/usr/lib/sysusers.d/xcg.conf" && test -f "$R/usr/lib/tmpfiles.d/xcg.conf"'
  check "tmpfiles: /run/xcg/empty 755, /var/lib/xcg 700, /var/log/xcg 750" \
    eval 'mode_owner_is /run/xcg/empty "755 root root" && mode_owner_is /var/lib/xcg "700 root root" && mode_owner_is /var/log/xcg "750 root root"'
  check "man pages xcg(8), xcg.yaml(5) render without warnings" man_pages_render

  # The shipped config listens on 127.0.0.1:2222; port 0 takes any free one, which the
  # broker logs, so this test never collides with anything on the host.
  sed -i 's/^listen: .*/listen: ["127.0.0.1:0"]/' "$R/etc/xcg/xcg.yaml"
  start_notify_listener
  start_serve
  check "xcg serve logs its listening port" \
    wait_for 30 eval '[ -n "$(serve_port)" ] || ! running "$SERVE_PID"'
  PORT=$(serve_port)
  if [ -z "$PORT" ]; then
    echo "    xcg serve did not start:"; sed 's/^/      /' "$WORK/serve.log"
    FAILS=$((FAILS + 1))
  else
    check "READY=1 on NOTIFY_SOCKET (Type=notify)" wait_for 10 notify_received READY=1
    check "ssh-keyscan from the host gets the generated host key" keyscan_matches_host_key
    check "host key: mode 600 in /var/lib/xcg" \
      mode_owner_is /var/lib/xcg/ssh_host_ed25519_key "600 root root"
    check "xcg hostkeys prints it" hostkeys_lists_the_key
    check "SIGTERM stops xcg serve, exit status 0" stop_serve
    notify_received STOPPING=1 && echo "    (STOPPING=1 received)"
    check "no error lines in its log" no_error_lines
  fi
  running "${SERVE_PID:-0}" && kill -KILL "$SERVE_PID"
  kill "$NOTIFY_PID" && wait "$NOTIFY_PID" 2>/dev/null || true
  sed 's/^/    | /' "$WORK/serve.log"

  boot_checks

  in_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get purge -y -q xcg >>"$WORK/apt.log" 2>&1 ||
    { tail -n 20 "$WORK/apt.log"; FAILS=$((FAILS + 1)); }
  check "purge removes config, unit, host keys, logs; keeps the user" \
    eval 'gone /etc/xcg/xcg.yaml && gone /lib/systemd/system/xcg.service && gone /etc/systemd/system/multi-user.target.wants/xcg.service && gone /var/lib/xcg && gone /var/log/xcg && in_root getent passwd xcg >/dev/null'

  echo "  $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

if [ "${1:-}" = "--inside" ]; then
  inside "$2" "$3"
  exit
fi

DEB=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) DEB=$(readlink -f "$2"); shift 2 ;;
    *) die "usage: contrib/deb-test.sh [--deb FILE]" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)"

main
