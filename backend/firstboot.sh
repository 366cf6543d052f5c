#!/usr/bin/env bash
# blinkpay first boot: cloud-init's runcmd starts this once, as root, on a freshly flashed
# Raspberry Pi OS card that `blinkpay-host device add ID --boot-dir` filled:
#
#   bash /boot/firmware/blinkpay/firstboot.sh /boot/firmware/blinkpay
#
# 1. install from the signed bundle (blinkpay/bundle.tar.gz, verified against
#    blinkpay/operator.pub.pem before anything in it runs), with no network;
# 2. copy the site's files (host key, broker CA) into /etc/blinkpay;
# 3. `blinkpay provision`: the terminal makes its own keys; the PIN key and its broker
#    password are taken from the card and removed from it;
# 4. `blinkpay register`: its public key goes to the host with the one-time enrolment
#    token; the host burns the token and answers signed; the token is removed from the card;
# 5. start the service: the terminal comes online.
#
# Everything it prints also goes to blinkpay/firstboot.log on the card, so a terminal that
# did not come online can be diagnosed by reading the card on any computer.
#
# For images with blinkpay already installed (and for tests): BLINKPAY_FIRSTBOOT_BLINKPAY
# names the installed `blinkpay` command and step 1 is skipped; BLINKPAY_FIRSTBOOT_PREFIX
# lays /etc and /var/lib under a directory and starts nothing.
set -euo pipefail

boot="${1:-/boot/firmware/blinkpay}"
prefix="${BLINKPAY_FIRSTBOOT_PREFIX:-}"
user="blinkpay"
etc="$prefix/etc/blinkpay"
data="$prefix/var/lib/blinkpay"
config="$etc/config.toml"

say() { echo "blinkpay first boot: $*"; }
die() { echo "blinkpay first boot: error: $*" >&2; exit 1; }

[ -d "$boot" ] || die "no folder $boot: give the card's blinkpay folder"
exec > >(tee -a "$boot/firstboot.log") 2>&1
say "started $(date -u +%Y-%m-%dT%H:%M:%SZ) from $boot"

# setting KEY: a checked value of terminal.env (never sourced: the card is plain FAT).
setting() {
  local value
  value="$(sed -n "s/^$1=//p" "$boot/terminal.env" | head -n 1)"
  [[ "$value" =~ $2 ]] || die "terminal.env: $1 is missing or malformed; write the card again"
  echo "$value"
}

need() {
  local name
  for name in "$@"; do
    [ -f "$boot/$name" ] || die "$boot/$name is missing; write the card again (blinkpay-host device add)"
  done
}

# verify_bundle TMP: the bundle's SHA256SUMS signed by the operator, and its install.sh listed.
verify_bundle() {
  local tmp="$1" sums="$1/blinkpay-bundle"
  need bundle.tar.gz operator.pub.pem
  command -v openssl >/dev/null || die "openssl is needed to verify the bundle (apt-get install openssl)"
  tar -C "$tmp" -xzf "$boot/bundle.tar.gz" blinkpay-bundle/SHA256SUMS \
    blinkpay-bundle/SHA256SUMS.sig blinkpay-bundle/install.sh \
    || die "$boot/bundle.tar.gz is not a signed blinkpay bundle"
  openssl pkeyutl -verify -pubin -inkey "$boot/operator.pub.pem" -rawin \
    -in "$sums/SHA256SUMS" -sigfile "$sums/SHA256SUMS.sig" >/dev/null 2>&1 \
    || die "the bundle's signature does not verify with operator.pub.pem: refusing to install it"
  (cd "$sums" && grep ' \./install\.sh$' SHA256SUMS | sha256sum --quiet -c -) \
    || die "the bundle's install.sh does not match its signed SHA256SUMS"
}

install_blinkpay() {
  if [ -n "${BLINKPAY_FIRSTBOOT_BLINKPAY:-}" ]; then
    say "blinkpay is already installed; no bundle needed"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  verify_bundle "$tmp"
  say "installing from the bundle (no network)"
  bash "$tmp/blinkpay-bundle/install.sh" --bundle "$boot/bundle.tar.gz" \
    --bundle-key "$boot/operator.pub.pem" ${prefix:+--prefix "$prefix"}
  rm -rf "$tmp"
}

# The installed layout (no prefix), as root: the service user owns the keys.
service_user() { [ -z "$prefix" ] && [ "$(id -u)" = 0 ] && id "$user" >/dev/null 2>&1; }

# put SRC NAME: a site file into /etc/blinkpay, readable by the service user's group.
put() {
  mkdir -p "$etc"
  install -m 0640 "$1" "$etc/$2"
  if service_user; then
    chgrp "$user" "$etc/$2"
  fi
}

# as_service_user CMD...: root runs it as the service user, who alone may read the keys.
as_service_user() {
  if service_user; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

main() {
  local device_id broker shard mode blinkpay
  need terminal.env host.pub.pem
  device_id="$(setting DEVICE_ID '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$')"
  broker="$(setting BROKER '^mqtts?://[^[:space:]/]+(:[0-9]+)?$')"
  shard="$(setting SHARD_ID '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$')"
  mode="$(setting MODE '^(turnstile|vending)$')"
  install_blinkpay
  read -r -a blinkpay <<< "${BLINKPAY_FIRSTBOOT_BLINKPAY:-${prefix}/opt/blinkpay/venv/bin/blinkpay}"

  local site=(--backend-key "$etc/host-ed25519.pub")
  put "$boot/host.pub.pem" host-ed25519.pub
  if [ -f "$boot/ca.pem" ]; then
    put "$boot/ca.pem" ca.pem
    site+=(--ca-file "$etc/ca.pem")
  fi
  if [ -f "$boot/pin.key" ]; then
    site+=(--pin-key "$boot/pin.key")
  fi
  if [ -f "$boot/mqtt.password" ]; then
    # its own broker credential (user = device id): into $data/keys, 0600, the service user's
    site+=(--mqtt-password "$boot/mqtt.password")
  fi
  say "provisioning $device_id (the terminal makes its own keys)"
  "${blinkpay[@]}" provision --device-id "$device_id" --broker "$broker" --shard-id "$shard" \
    --mode "$mode" --config-out "$config" --data-dir "$data" "${site[@]}" >/dev/null
  rm -f "$boot/pin.key" "$boot/mqtt.password"  # now in $data/keys/, 0600

  if [ -f "$boot/enrolment.token" ]; then
    say "registering $device_id's key with the host at $broker"
    as_service_user "${blinkpay[@]}" register --config "$config" --token - \
      < "$boot/enrolment.token" || die "not registered (the line above says why)"
    rm -f "$boot/enrolment.token"  # burnt at the host; useless from now on
  else
    say "no enrolment token on the card: keeping the earlier registration"
  fi

  if [ -z "$prefix" ] && [ -d /run/systemd/system ]; then
    systemctl enable --now blinkpay.service
    say "done: the service runs; check it online at the host (blinkpay-host device list)"
  else
    say "done: start it with: blinkpay run --config $config"
  fi
}

main
