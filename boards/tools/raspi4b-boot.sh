#!/bin/sh
# Boots an SD image from `fas-boards image --board rpi4` on QEMU's Raspberry Pi 4B model
# and prints the fas lines of its serial console. Not yet part of the test suite (see the
# README, Boards): a manual check.
#
#   boards/tools/raspi4b-boot.sh target/boards/fas-rpi4.img [seconds]
#
# Bookworm's QEMU (7.2) has no raspi4b; bookworm-backports' QEMU 10 has. It is fetched from
# Debian's archive with a private apt (no root, no change to the host's apt) into the fas
# cache and run from there against bookworm's own libraries. Needs: apt-get, dpkg-deb,
# mtools, device-tree-compiler (fdtput). Only deb.debian.org is contacted.
set -eu
img=${1:?usage: $0 IMAGE [seconds]}
secs=${2:-120}
cache=${FAS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fas}/qemu-backports
qemu=$cache/root/usr/bin/qemu-system-aarch64
if [ ! -x "$qemu" ]; then
  mkdir -p "$cache/lists/partial" "$cache/archives/partial"
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$cache/sources.list"
  apt="-o Dir::Etc::SourceList=$cache/sources.list -o Dir::Etc::SourceParts=/dev/null
       -o Dir::State::Lists=$cache/lists -o Dir::Cache::Archives=$cache/archives"
  # shellcheck disable=SC2086
  apt-get $apt update >/dev/null
  # shellcheck disable=SC2086
  v=$(apt-cache $apt policy qemu-system-arm | sed -n 's/^ *Candidate: //p')
  (cd "$cache" && apt-get $apt download "qemu-system-arm=$v" "qemu-system-common=$v" \
    "qemu-system-modules-opengl=$v" >/dev/null 2>&1)
  for d in "$cache"/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The boot partition starts at sector 2048 (fas-boards' layout).
for f in vmlinuz initrd.img bcm2711-rpi-4-b.dtb; do
  mcopy -o -i "$img@@1048576" "::$f" "$work/$f"
done
# What QEMU's BCM2711 lacks (or Debian's drivers oops on) is switched off in the DTB; the
# SD card sits on the Arasan SDHCI, without the Wi-Fi power sequence.
dtb=$work/bcm2711-rpi-4-b.dtb
for n in /soc/hvs@7e400000 /soc/pixelvalve@7e206000 /soc/pixelvalve@7e207000 \
  /soc/pixelvalve@7e20a000 /soc/pixelvalve@7e216000 /soc/pixelvalve@7ec12000 \
  /soc/interrupt-controller@7ef00100 /soc/hdmi@7ef00700 /soc/hdmi@7ef05700 \
  /soc/i2c@7ef04500 /soc/i2c@7ef09500 /gpu /emmc2bus/mmc@7e340000 \
  /scb/pcie@7d500000 /scb/ethernet@7d580000; do
  fdtput -t s "$dtb" "$n" status disabled
done
fdtput -d "$dtb" /soc/mmc@7e300000 mmc-pwrseq
# QEMU wants a power-of-two SD card.
cp "$img" "$work/sd.img"
truncate -s 256M "$work/sd.img"
# The image's console is the mini UART (ttyS1); opening it hangs in QEMU's model, so the
# check uses the PL011 (ttyAMA0).
cmdline="console=ttyAMA0,115200 root=LABEL=fas-root rootwait panic=10 clk_ignore_unused"
start=$(date +%s)
QEMU_MODULE_DIR=$cache/root/usr/lib/x86_64-linux-gnu/qemu timeout "$secs" "$qemu" \
  -M raspi4b -m 2G -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -dtb "$dtb" \
  -append "$cmdline" -drive "if=sd,format=raw,file=$work/sd.img" -display none -audio none \
  -serial "file:$work/serial.log" -serial null -monitor none -no-reboot >/dev/null 2>&1 || true
echo "raspi4b: ran $(($(date +%s) - start)) s"
grep -a -E '^(fas-|\[ *[0-9.]+\] (mmc|EXT4|Kernel panic))' "$work/serial.log" | head -40
grep -q '^fas-init: starting fas-edge' "$work/serial.log"
