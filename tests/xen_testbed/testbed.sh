#!/usr/bin/env bash
# testbed.sh - the xcg Xen test bed: a real Xen 4.17 hypervisor, a Debian 12 PV dom0 (xl,
# xenstored, xenconsoled) and two PV guests, guest1 and guest2, booted under QEMU (TCG).
#
#   testbed.sh build       build the dom0 image, or reuse the cached one (root)
#   testbed.sh boot        start QEMU in the background; wait for dom0 and both guests;
#                          install XCG_BINARY in dom0 as /usr/local/bin/xcg (and the
#                          xcg-session and xcg-web beside it, which that xcg runs for each
#                          SSH and browser connection)
#   testbed.sh deploy      install XCG_BINARY in the running dom0 again (after a rebuild)
#   testbed.sh ssh [CMD]   run CMD (or a shell) in dom0 as root, the operator's way
#   testbed.sh console     attach to the serial console (Xen + dom0 hvc0; needs socat)
#   testbed.sh status      running or not, ports, logs
#   testbed.sh stop        stop QEMU (only the process this script started)
#   testbed.sh clean       stop, then delete the cache and the run directory
#
# Everything stays on this machine: QEMU user networking with restrict=on (dom0 reaches
# nothing), and only three hostfwd ports on 127.0.0.1 lead into dom0: its sshd (operator),
# port 2222 (xcg serve) and port 8443 (xcg's browser console). The disk is attached with snapshot=on: every boot starts pristine.
#
# Environment:
#   XCG_BINARY=build/xcg                the xcg binary for dom0 (from the host's build)
#   XCG_TESTBED_CACHE=/var/cache/xcg-testbed   rootfs, images; keyed on the recipe's hash
#   XCG_TESTBED_RUN=/tmp/xcg-testbed    pid file, ports, serial log, the host share
#   XCG_TESTBED_MEM=1024 XCG_TESTBED_DOM0_MEM=512 (MiB)
#   XCG_TESTBED_BOOT_TIMEOUT=600        seconds for dom0 to come up (and again for the guests)
#   XCG_TESTBED_MIRROR / XCG_TESTBED_SECURITY_MIRROR   default: this host's apt sources
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
SELF=$HERE/testbed.sh
RECIPE=$HERE/recipe
CACHE=${XCG_TESTBED_CACHE:-/var/cache/xcg-testbed}
RUN=${XCG_TESTBED_RUN:-/tmp/xcg-testbed}
MEM=${XCG_TESTBED_MEM:-1024}
DOM0_MEM=${XCG_TESTBED_DOM0_MEM:-512}
BOOT_TIMEOUT=${XCG_TESTBED_BOOT_TIMEOUT:-600}
XCG_BINARY=${XCG_BINARY:-$HERE/../../build/xcg}
SESSION_BINARY=$(dirname "$XCG_BINARY")/xcg-session   # a build tree's xcg runs the one beside it
WEB_BINARY=$(dirname "$XCG_BINARY")/xcg-web             # likewise for a browser connection
SUITE=bookworm
GUESTS=(guest1 guest2)
XCG_DOM0_PORT=2222
WEB_DOM0_PORT=8443
HOST_PACKAGES="qemu-system-x86 debootstrap e2fsprogs cpio gzip xz-utils openssh-client
  python3 python3-pytest python3-pexpect chromium chromium-driver python3-selenium"

ROOTFS=$CACHE/rootfs
KEY=$RUN/operator_key   # per run, never cached; dom0 gets the public half through the share
SHARE=$RUN/share

log() { printf '[testbed %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need_root() { [[ $EUID -eq 0 ]] || die "'$1' needs root"; }
for _d in "$CACHE" "$RUN"; do   # QEMU options are comma-separated; rm -rf must stay sane
  [[ $_d == /?*/* && $_d != *[,[:space:]]* ]] \
    || die "XCG_TESTBED_CACHE/RUN must be absolute, 2+ levels deep, without commas or spaces: $_d"
done

# ---------------------------------------------------------------- host

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_host_packages() {
  local missing=() p
  for p in $HOST_PACKAGES; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  need_root "installing ${missing[*]}"
  log "host: apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# "URI SUITE" for every enabled deb source of this host (one-line and deb822 formats).
host_apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""; types = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^[ \t]*#/ || $i !~ /:/) continue
          k = tolower(substr($i, 1, index($i, ":") - 1)); v = substr($i, index($i, ":") + 1)
          gsub(/^[ \t]+|[ \t]+$/, "", v)
          if (k == "uris") uris = v; else if (k == "suites") suites = v
          else if (k == "types") types = v; else if (k == "enabled") enabled = v
        }
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b]
        } }' "$f"
  done
}

detect_mirrors() {
  local sources; sources=$(host_apt_sources)
  MIRROR=${XCG_TESTBED_MIRROR:-$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$sources")}
  SECURITY_MIRROR=${XCG_TESTBED_SECURITY_MIRROR:-$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$sources")}
  HAVE_UPDATES=$(awk -v s="$SUITE-updates" '$2 == s { print "yes"; exit }' <<<"$sources")
  [[ -n $MIRROR ]] || die "this host has no '$SUITE' apt source; set XCG_TESTBED_MIRROR"
}

# Keeps the mirror's host name out of every log this script leaves behind.
scrub() {
  local h args=()
  for h in ${MIRROR:-} ${SECURITY_MIRROR:-}; do
    h=${h#*://}; h=${h%%/*}; [[ -n $h ]] && args+=(-e "s|$h|<mirror>|g")
  done
  if ((${#args[@]})); then sed -u "${args[@]}"; else cat; fi
}

mounts_up() { mount -t proc proc "$1/proc"; mount -t sysfs sysfs "$1/sys"; mount --bind /dev "$1/dev"; }
mounts_down() {
  local d
  for d in dev sys proc; do if mountpoint -q "$1/$d"; then umount -l "$1/$d"; fi; done
}

# Removes a tree of ours, never across a mount point.
remove_tree() {
  [[ -n $1 && $1 == "$CACHE"/* ]] || die "refusing to remove $1"
  [[ -e $1 ]] || return 0
  mounts_down "$1"
  if awk -v p="$1/" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    die "something is still mounted under $1"
  fi
  rm -rf --one-file-system "$1"
}

# apt-get in a rootfs with this host's suites (main, updates, security), so dom0 gets the
# same Xen and library versions as the host that builds xcg. No source stays behind.
rootfs_apt() {
  local root=$1; shift
  {
    echo "deb $MIRROR $SUITE main"
    if [[ -n $HAVE_UPDATES ]]; then echo "deb $MIRROR $SUITE-updates main"; fi
    if [[ -n $SECURITY_MIRROR ]]; then echo "deb $SECURITY_MIRROR $SUITE-security main"; fi
  } >"$root/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  trap 'mounts_down "'"$root"'"' EXIT
  mounts_up "$root"
  local rc=0
  # INITRD=No: the kernel's own initramfs is not needed; dom0 gets a small one of ours.
  chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive INITRD=No LC_ALL=C sh -ec "
      apt-get update -q
      apt-get -y -q dist-upgrade
      apt-get -y -q install --no-install-recommends $*
      apt-get clean" 2>&1 | scrub >>"$CACHE/build.log" || rc=$?
  mounts_down "$root"; trap - EXIT
  rm -f "$root/usr/sbin/policy-rc.d"
  echo "# xcg test bed dom0: no apt sources (dom0 has no network)" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  ((rc == 0)) || die "apt-get in the rootfs failed, see $CACHE/build.log"
}

recipe_packages() { sed -e 's/#.*//' "$RECIPE/dom0-packages" | xargs; }

# Debian packages (of this host) that hold the libraries XCG_BINARY (xcg-session, xcg-web) link.
binary_packages() {
  [[ -f $XCG_BINARY ]] || return 0
  local lib b paths=()
  while read -r lib; do
    paths+=("$lib" "/usr$lib" "$(readlink -f "$lib")")   # dpkg knows one of the spellings
  done < <(for b in "$XCG_BINARY" "$SESSION_BINARY" "$WEB_BINARY"; do [[ -f $b ]] && ldd "$b"; done \
             | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
  ((${#paths[@]})) || return 0
  { dpkg -S "${paths[@]}" 2>/dev/null || true; } | awk -F': ' '/^[^ ]+: \// { print $1 }' \
    | tr ',' '\n' | sed 's/^ *//; s/:.*//' | sort -u
}

# ---------------------------------------------------------------- build

build_rootfs() {
  local packages; packages=$(recipe_packages)
  local want; want=$(printf 'v1 %s minbase\n%s\n' "$SUITE" "$packages" | sha256sum | cut -c1-16)
  if [[ -f $CACHE/rootfs.stamp && $(<"$CACHE/rootfs.stamp") == "$want" && -d $ROOTFS ]]; then
    log "rootfs: cached ($ROOTFS)"; return 0
  fi
  detect_mirrors
  local new=$CACHE/rootfs.new t0=$SECONDS
  remove_tree "$new"; rm -f "$CACHE/rootfs.stamp" "$CACHE/image.stamp"
  log "rootfs: debootstrap --variant=minbase $SUITE (log: $CACHE/build.log)"
  debootstrap --variant=minbase "$SUITE" "$new" "$MIRROR" 2>&1 | scrub >>"$CACHE/build.log" \
    || die "debootstrap failed, see $CACHE/build.log"
  rm -f "$new/var/log/bootstrap.log"
  log "rootfs: apt-get install $packages"
  rootfs_apt "$new" "$packages"
  remove_tree "$ROOTFS"; mv "$new" "$ROOTFS"
  echo "$want" >"$CACHE/rootfs.stamp"
  log "rootfs: done in $((SECONDS - t0)) s"
}

# The libraries of the binary under test must be in dom0; add what the recipe lacks.
add_binary_packages() {
  local missing=() p
  for p in $(binary_packages); do
    dpkg-query --admindir="$ROOTFS/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null \
      | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  detect_mirrors
  log "rootfs: adding ${missing[*]} (libraries of $XCG_BINARY)"
  rootfs_apt "$ROOTFS" "${missing[*]}"
}

kernel_version() {
  local v; v=$(ls "$ROOTFS/lib/modules" | sort -V | tail -n1)
  [[ -n $v ]] || die "no kernel in the rootfs"; echo "$v"
}

# The image's key: the installed packages plus every recipe file and this script.
image_key() {
  {
    sha256sum "$ROOTFS/var/lib/dpkg/status" | cut -d' ' -f1
    (cd "$HERE" && find recipe testbed.sh -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

cpio_pack() { (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -6) >"$2"; }

# bzImage -> its uncompressed ELF: Xen (dom0) and libxc (guests) load it without spending
# seconds of emulated CPU on decompression.
extract_vmlinux() {
  python3 - "$1" "$2" <<'EOF'
import lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
for magic, make in ((b"\xfd7zXZ\x00", lzma.LZMADecompressor),
                    (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))):
    at = data.find(magic)
    while at >= 0:
        try:
            out = make().decompress(data[at:])
        except (lzma.LZMAError, zlib.error):
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        at = data.find(magic, at + 1)
sys.exit("no xz or gzip compressed ELF kernel found in " + sys.argv[1])
EOF
}

# dom0's initrd: busybox plus the virtio disk and ext4 modules; mounts /dev/vda, switches root.
build_dom0_initrd() {
  local kv=$1 d; d=$(mktemp -d /tmp/xcg-testbed-initrd.XXXXXX)
  mkdir -p "$d"/{bin,dev,proc,sys,newroot,lib/modules}
  cp "$ROOTFS/bin/busybox" "$d/bin/busybox"
  cp "$RECIPE/dom0-initrd/init" "$d/init"
  local m f
  for m in virtio_pci virtio_blk ext4; do
    chroot "$ROOTFS" /sbin/modprobe -S "$kv" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++ && !/-intel\.ko/' | while read -r f; do  # -intel: needs SSE4.2
    case $f in
      *.ko) cp "$ROOTFS$f" "$d/lib/modules/" ;;
      *.ko.xz) xz -dc "$ROOTFS$f" >"$d/lib/modules/$(basename "${f%.xz}")" ;;
      *) die "unknown module format: $f" ;;
    esac
    basename "${f%.ko*}.ko" >>"$d/modules.list"
  done
  touch "$d/modules.list"
  cpio_pack "$d" "$CACHE/dom0-initrd.cpio.gz"
  rm -rf "$d"
}

build_guest_initrd() {
  local d; d=$(mktemp -d /tmp/xcg-testbed-guest.XXXXXX)
  mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,etc,root,tmp}
  cp "$ROOTFS/bin/busybox" "$d/bin/busybox"
  cp -R "$RECIPE/guest/." "$d/"
  cpio_pack "$d" "$1"
  rm -rf "$d"
}

# Our files in the rootfs: the recipe's dom0 tree, guest configs, kernel, guest initrd.
write_dom0_files() {
  local r=$ROOTFS kv=$1
  rm -rf "$r/etc/xcg-testbed" "$r/var/lib/xcg-testbed"
  cp -R "$RECIPE/dom0/." "$r/"
  local name
  for name in "${GUESTS[@]}"; do
    sed "s/@NAME@/$name/g" "$RECIPE/dom0/etc/xen/guest.cfg.in" >"$r/etc/xen/$name.cfg"
  done
  rm -f "$r/etc/xen/guest.cfg.in"
  echo xcg-testbed >"$r/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 xcg-testbed\n' >"$r/etc/hosts"
  # xenconsoled logs every guest's console to /var/log/xen/console/guest-NAME.log: the
  # operator's view, which the tests compare with what xcg shows.
  grep -q '^XENCONSOLED_ARGS=' "$r/etc/default/xen" 2>/dev/null \
    || echo 'XENCONSOLED_ARGS="--log=guest"' >>"$r/etc/default/xen"
  # The unprivileged user of xcg's session processes (config: run_as, default xcg).
  chroot "$r" getent passwd xcg >/dev/null \
    || chroot "$r" useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin xcg
  mkdir -p "$r/var/lib/xcg-testbed" "$r/mnt/host"
  cp "$CACHE/vmlinux" "$r/var/lib/xcg-testbed/vmlinux"
  build_guest_initrd "$r/var/lib/xcg-testbed/guest-initrd.cpio.gz"
}

build_image() {
  local want; want=$(image_key)
  if [[ -f $CACHE/image.stamp && $(<"$CACHE/image.stamp") == "$want" && -f $CACHE/dom0.img ]]; then
    log "image: cached ($CACHE/dom0.img, key $want)"; return 0
  fi
  local t0=$SECONDS kv; kv=$(kernel_version)
  log "image: kernel $kv, key $want"
  rm -f "$CACHE/image.stamp"
  zcat "$ROOTFS"/boot/xen-4.17-amd64.gz >"$CACHE/xen"   # QEMU's multiboot loader wants the ELF
  extract_vmlinux "$ROOTFS/boot/vmlinuz-$kv" "$CACHE/vmlinux" || die "cannot extract vmlinux"
  write_dom0_files "$kv"
  build_dom0_initrd "$kv"
  local mb; mb=$(du -sm --apparent-size "$ROOTFS" | cut -f1)
  rm -f "$CACHE/dom0.img.new"
  # Inode tables and journal initialised here, not by dom0's ext4lazyinit under emulation.
  mkfs.ext4 -q -F -L xcg-testbed -E lazy_itable_init=0,lazy_journal_init=0 -d "$ROOTFS" \
    "$CACHE/dom0.img.new" "$((mb + 512))M" >/dev/null \
    || die "mkfs.ext4 failed"
  mv "$CACHE/dom0.img.new" "$CACHE/dom0.img"
  echo "$want" >"$CACHE/image.stamp"
  log "image: done in $((SECONDS - t0)) s ($CACHE/dom0.img)"
}

build() {
  need_root build
  local t0=$SECONDS
  install_host_packages
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"   # one build at a time per cache
  flock -w 1800 8 || die "another build holds $CACHE/.lock"
  build_rootfs
  add_binary_packages
  build_image
  log "build: $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- run

qemu_pid() { # prints the pid if our QEMU is running
  local p; [[ -f $RUN/qemu.pid ]] || return 1
  p=$(<"$RUN/qemu.pid")
  [[ $p =~ ^[0-9]+$ && -r /proc/$p/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$RUN/serial.sock" || return 1
  echo "$p"
}

state() { sed -n "s/^$1=//p" "$RUN/state" 2>/dev/null; }

ssh_opts() {  # $1: what to do with the shared connection (no: use it if it is there)
  SSH_OPTS=(-F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o IdentityAgent=none
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=10
    -o ServerAliveCountMax=6 -o "ControlMaster=${1:-no}" -o "ControlPath=$RUN/dom0.ctl"
    -p "$(state SSH_PORT)")
}

dom0() { ssh_opts; ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$@"; }

# One operator connection that later commands share as channels: a new ssh handshake with
# emulated dom0 costs seconds, more when the host is busy. It ends with QEMU at the latest.
start_master() {
  rm -f "$RUN/dom0.ctl"
  ssh_opts yes
  ssh "${SSH_OPTS[@]}" -f -N root@127.0.0.1 </dev/null >/dev/null 2>>"$RUN/ssh-master.log" \
    || log "warning: no shared ssh connection to dom0 (see $RUN/ssh-master.log)"
}

stop_master() {
  [[ -S $RUN/dom0.ctl ]] || return 0
  ssh -o "ControlPath=$RUN/dom0.ctl" -O exit root@127.0.0.1 >/dev/null 2>&1 || true
  rm -f "$RUN/dom0.ctl"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_qemu() {
  local ssh_port=$1 xcg_port=$2 web_port=$3
  local xen_cmdline="console=com1 com1=115200,8n1 console_timestamps=boot dom0_mem=${DOM0_MEM}M,max:${DOM0_MEM}M loglvl=all guest_loglvl=all"
  local dom0_cmdline="root=/dev/vda rootfstype=ext4 console=hvc0 earlyprintk=xen"
  rm -f "$RUN"/serial.log "$RUN"/serial.sock "$RUN"/monitor.sock "$RUN"/qemu.pid
  # -cpu qemu64: a model without SMAP (with it, e.g. -cpu max, the PV dom0 dies at once).
  qemu-system-x86_64 -name xcg-testbed -machine pc -accel tcg -cpu qemu64 -smp 2 -m "$MEM" \
    -display none -vga none -no-reboot -daemonize -pidfile "$RUN/qemu.pid" \
    -chardev "socket,id=ser0,path=$RUN/serial.sock,server=on,wait=off,logfile=$RUN/serial.log" \
    -serial chardev:ser0 -monitor "unix:$RUN/monitor.sock,server=on,wait=off" \
    -kernel "$CACHE/xen" -append "$xen_cmdline" \
    -initrd "$CACHE/vmlinux $dom0_cmdline,$CACHE/dom0-initrd.cpio.gz" \
    -drive "file=$CACHE/dom0.img,format=raw,if=virtio,snapshot=on" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22,hostfwd=tcp:127.0.0.1:$xcg_port-:$XCG_DOM0_PORT,hostfwd=tcp:127.0.0.1:$web_port-:$WEB_DOM0_PORT" \
    -device virtio-net-pci,netdev=n0,romfile= \
    -device virtio-rng-pci \
    -virtfs "local,path=$SHARE,mount_tag=xcgshare,security_model=none,readonly=on" \
    2>>"$RUN/qemu.log"
}

boot() {
  if qemu_pid >/dev/null; then log "already running (pid $(qemu_pid))"; return 0; fi
  local f
  for f in dom0.img xen vmlinux dom0-initrd.cpio.gz; do
    [[ -f $CACHE/$f ]] || die "no $CACHE/$f: run '$0 build' first"
  done
  mkdir -p "$RUN" "$SHARE"
  rm -f "$RUN/state" "$RUN/qemu.log" "$KEY" "$KEY.pub"
  ssh-keygen -q -t ed25519 -N '' -C xcg-testbed-operator -f "$KEY"
  cp "$KEY.pub" "$SHARE/operator_key.pub"
  stage_binary
  local ssh_port xcg_port web_port try t0; t0=$(date +%s.%N)
  for try in 1 2 3; do   # a free port can be taken between the probe and QEMU's bind
    ssh_port=${XCG_TESTBED_SSH_PORT:-$(free_port)}
    xcg_port=${XCG_TESTBED_XCG_PORT:-$(free_port)}
    web_port=${XCG_TESTBED_WEB_PORT:-$(free_port)}
    [[ $(printf '%s\n' "$ssh_port" "$xcg_port" "$web_port" | sort -u | wc -l) == 3 ]] || continue
    if start_qemu "$ssh_port" "$xcg_port" "$web_port"; then break; fi
    ((try < 3)) || { cat "$RUN/qemu.log" >&2; die "qemu did not start"; }
  done
  printf 'SSH_PORT=%s\nXCG_PORT=%s\nWEB_PORT=%s\n' "$ssh_port" "$xcg_port" "$web_port" >"$RUN/state"
  log "boot: qemu pid $(<"$RUN/qemu.pid"), -m $MEM, dom0 ${DOM0_MEM}M; dom0 sshd 127.0.0.1:$ssh_port," \
    "xcg 127.0.0.1:$xcg_port, web 127.0.0.1:$web_port; serial log $RUN/serial.log"
  local deadline=$((SECONDS + BOOT_TIMEOUT))
  until grep -aq 'XCG-TESTBED-READY' "$RUN/serial.log" 2>/dev/null; do
    if grep -aqE 'XCG-TESTBED-FAILED|Kernel panic|Panic on CPU|Dom0 crashed' "$RUN/serial.log" 2>/dev/null \
        || ! qemu_pid >/dev/null; then
      tail -n 30 "$RUN/serial.log" >&2 || true; stop; die "boot failed (last serial lines above)"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$RUN/serial.log" >&2; stop; die "boot timed out"; }
    sleep 0.5
  done
  local t1; t1=$(date +%s.%N)
  until dom0 true 2>/dev/null; do
    ((SECONDS < deadline)) || { stop; die "dom0 sshd did not answer in time"; }
    sleep 1
  done
  start_master
  dom0 xcg-testbed-wait-guests "$BOOT_TIMEOUT" "${GUESTS[@]}" || { stop; die "the guests did not boot"; }
  local t2; t2=$(date +%s.%N)
  deploy
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    printf "TIMING boot: qemu start -> dom0 ready %.1fs, -> both guest banners %.1fs\n", b - a, c - a }' \
    | tee -a "$RUN/timings" >&2
}

# The binaries go through the read-only 9p share; dom0 copies them to its own disk.
stage_binary() {
  rm -f "$SHARE/xcg" "$SHARE/xcg-session" "$SHARE/xcg-web"
  if [[ -f $XCG_BINARY ]]; then
    cp "$XCG_BINARY" "$SHARE/xcg"
    if [[ -f $SESSION_BINARY ]]; then cp "$SESSION_BINARY" "$SHARE/xcg-session"; fi
    if [[ -f $WEB_BINARY ]]; then cp "$WEB_BINARY" "$SHARE/xcg-web"; fi
  else
    log "warning: no xcg binary at $XCG_BINARY (set XCG_BINARY); dom0 gets none"
  fi
}

deploy() {
  qemu_pid >/dev/null || die "not running"
  stage_binary
  [[ -f $SHARE/xcg ]] || return 0
  dom0 'for f in xcg xcg-session xcg-web; do
          [ -f /mnt/host/$f ] || continue
          install -m 755 /mnt/host/$f /usr/local/bin/$f && ! ldd /usr/local/bin/$f | grep "not found" || exit 1
        done' || die "xcg cannot run in dom0 (missing libraries above?)"
  local also=() f
  for f in xcg-session xcg-web; do [[ -f $SHARE/$f ]] && also+=("$f"); done
  log "deploy: $XCG_BINARY -> dom0:/usr/local/bin/xcg${also[*]:+ (with ${also[*]})}"
}

stop() {
  stop_master
  local p; p=$(qemu_pid) || { log "not running"; return 0; }
  log "stop: qemu pid $p"
  kill -TERM "$p" 2>/dev/null || true
  local i; for ((i = 0; i < 100; i++)); do [[ -d /proc/$p ]] || break; sleep 0.1; done
  if [[ -d /proc/$p ]]; then kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$RUN/qemu.pid"
}

cmd_console() {
  qemu_pid >/dev/null || die "not running"
  command -v socat >/dev/null || die "socat is not installed (apt-get install socat)"
  log "console: Ctrl-] quits; Ctrl-a three times switches input between dom0 and Xen"
  exec socat -,raw,echo=0,escape=0x1d "UNIX-CONNECT:$RUN/serial.sock"
}

status() {
  local p
  if p=$(qemu_pid); then
    echo "running: qemu pid $p; dom0 sshd 127.0.0.1:$(state SSH_PORT), xcg 127.0.0.1:$(state XCG_PORT), web 127.0.0.1:$(state WEB_PORT); serial log $RUN/serial.log"
  else
    echo "not running"
  fi
  if [[ -f $CACHE/image.stamp ]]; then echo "image: $CACHE/dom0.img (key $(<"$CACHE/image.stamp"))"; else echo "image: not built"; fi
}

clean() {
  need_root clean
  stop
  rm -rf "$RUN"
  if [[ -d $CACHE ]]; then remove_tree "$CACHE/rootfs.new"; remove_tree "$ROOTFS"; rm -rf "$CACHE"; fi
  log "clean: removed $CACHE and $RUN"
}

case ${1:-} in
  build) build ;;
  boot) boot ;;
  deploy) deploy ;;
  ssh) shift; qemu_pid >/dev/null || die "not running"; ssh_opts; exec ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$@" ;;
  console) cmd_console ;;
  status) status ;;
  stop) stop ;;
  clean) clean ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 2 ;;
esac
