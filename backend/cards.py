"""`blinkpay-host device add ID --boot-dir DIR`: a one-time enrolment token (only its hash
is kept) and the files of a new terminal's card (backend/bootfiles.py). Everything that
could make a useless card is checked before the token is issued."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backend.bootfiles import BootFiles, check_boot_files, write_boot_files
from backend.broker import issue_password
from backend.broker_cli import refresh
from backend.config import HostConfig
from backend.enrolment import issue_token
from backend.host import PaymentHost
from device.crypto.signing import load_signing_key, public_pem
from device.errors import BlinkpayError


def _given_files(config: HostConfig, bundle: Path | None) -> None:
    boot = config.boot
    for given in (bundle, boot.operator_public_key_file, boot.ca_file,
                  boot.ssh_authorized_keys_file, boot.wifi_psk_file):  # fmt: skip
        if given is not None and not given.is_file():
            raise BlinkpayError(f"{given}: no such file")


def write_card(
    config: HostConfig,
    device_id: str,
    target: Path,
    bundle: Path | None = None,
    ttl_s: float | None = None,
    shard_id: str | None = None,
) -> list[str]:
    """Issue the token and write the card's files into `target`; the names written. The
    terminal's templates come from `shard_id` (default mqtt.shard_id)."""
    if ttl_s is not None and not ttl_s > 0:
        raise BlinkpayError(f"--ttl {ttl_s}: give the seconds the token stays valid (> 0)")
    _given_files(config, bundle)
    files = BootFiles(
        device_id=device_id,
        broker_url=config.boot.broker_url or config.mqtt.url,
        shard_id=shard_id or config.mqtt.shard_id,
        token="",  # issued once everything else is known to be right
        host_public_pem=b"",
        pin_key_file=config.pin_key_file,
        boot=config.boot,
        ca_file=config.boot.ca_file or config.mqtt.ca_file,
        bundle=bundle,
    )
    check_boot_files(files)
    ttl_s = config.boot.token_ttl_s if ttl_s is None else ttl_s
    host = PaymentHost(config, serve=False)  # checks the host's keys; the database only
    try:
        token = issue_token(host.db, device_id, files.shard_id, ttl_s)
        # a new card, a new broker password: the one of an earlier card stops working
        password = issue_password(host.db, device_id, "terminal", files.shard_id)
        refresh(config, host.db)
    finally:
        host.db.close()
    public = public_pem(load_signing_key(config.signing_key_file).public_key())
    card = dataclasses.replace(files, token=token, host_public_pem=public, mqtt_password=password)
    return write_boot_files(target, card)
