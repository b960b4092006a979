#!/bin/sh
# Runs inside the debootstrap chroot. Turns the tree into something that
# boots systemd as PID 1 under docker, like a small VPS.
set -eu

# The build host's CA bundle, so HTTPS through an intercepting proxy
# (npm, pip) works inside the container the same way it does outside.
# rehash warns that a bundle is not a single certificate; the bundle is
# still concatenated into ca-certificates.crt, which is what clients read.
update-ca-certificates >/dev/null 2>&1

# Units that only make sense on real hardware or a real console and would
# leave the container "degraded" for no reason.
systemctl mask \
  getty@tty1.service console-getty.service serial-getty@.service \
  systemd-remount-fs.service dev-hugepages.mount sys-kernel-debug.mount \
  sys-fs-fuse-connections.mount systemd-firstboot.service >/dev/null 2>&1

# Each container must generate its own machine id on first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

apt-get clean
# Package lists stay: apt in the image must look like apt on a VPS, and
# an emptied list directory would look freshly updated to cache_valid_time.
rm -rf /var/cache/apt/*.bin /tmp/* /var/tmp/*
