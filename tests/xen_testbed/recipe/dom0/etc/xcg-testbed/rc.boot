#!/bin/bash
# xcg test bed dom0 boot: filesystems, Xen modules, the host share, network, Xen's daemons
# (xenstored, xenconsoled), sshd, then the guests. Prints XCG-TESTBED-READY or -FAILED on hvc0.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
stamp() { echo "xcg-testbed: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
failed() { echo "XCG-TESTBED-FAILED: $*"; exit 1; }

mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
ln -sfn /proc/self/fd /dev/fd; ln -sfn fd/0 /dev/stdin; ln -sfn fd/1 /dev/stdout; ln -sfn fd/2 /dev/stderr
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /run/lock /run/sshd
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -o remount,rw /
hostname -F /etc/hostname
stamp "dom0 userspace"

for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs virtio_net virtio-rng 9pnet_virtio 9p; do
  modprobe -q "$m" || echo "xcg-testbed: modprobe $m failed"
done

# The host's run directory, read-only: the operator's public key and the xcg binary.
mkdir -p /mnt/host
mount -t 9p -o trans=virtio,version=9p2000.L,ro xcgshare /mnt/host || failed "cannot mount the host share"
install -d -m 700 /root/.ssh
install -m 600 /mnt/host/operator_key.pub /root/.ssh/authorized_keys || failed "no operator key in the host share"

# QEMU user networking, restrict=on: 10.0.2.15 is dom0's usual address; no default route,
# there is nothing to reach. The host reaches dom0 only through hostfwd on 127.0.0.1.
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0

mkdir -p /var/log/xen/console
stamp "starting xenstored and xenconsoled"
/etc/init.d/xen start || failed "/etc/init.d/xen start"
/usr/sbin/sshd || failed "sshd"
xl list >/dev/null && xenstore-read /local/domain/0/name >/dev/null || failed "xl list / xenstore-read"

stamp "creating the guests"
for cfg in /etc/xen/guest1.cfg /etc/xen/guest2.cfg; do
  xl create -q "$cfg" || failed "xl create $cfg"
done
stamp "ready"
echo "XCG-TESTBED-READY"
