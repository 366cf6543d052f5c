#!/usr/bin/env bash
# make-rootfs.sh SUITE OUT.tar: a Debian SUITE (bookworm, trixie) arm64 root filesystem as
# a tar, enough of Raspberry Pi OS for the terminal: Python, venv, openssl (the bundle's
# signature) and mosquitto (the demo's broker). Needs root, mmdebstrap, qemu-user-static and
# binfmt_misc with qemu-aarch64 enabled (docs/operations.md, "arm64 without a Pi"). Written
# to OUT.tar.partial first, so a half-made one is never taken for a whole one.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SUITE OUT.tar" >&2; exit 2; }
suite="$1" out="$2"
# --format=tar: mmdebstrap picks the format from the name, and OUT.tar.partial does not end
# in .tar (it would make a directory)
mmdebstrap --quiet --arch=arm64 --variant=apt --format=tar \
  --include=python3,python3-venv,openssl,mosquitto \
  "$suite" "$out.partial" http://deb.debian.org/debian
mv "$out.partial" "$out"
