"""The files a field engineer copies onto the boot partition of a freshly flashed
Raspberry Pi OS card, so that the terminal installs, provisions and registers itself on
first boot (docs/operations.md, "First boot").

    user-data                 cloud-init, in Raspberry Pi Imager's layout: hostname, the
                              admin user, and runcmd that starts blinkpay/firstboot.sh
    network-config            Wi-Fi, as Imager writes it (only with [boot] wifi_ssid;
                              wired Ethernet with DHCP needs none)
    blinkpay/firstboot.sh     the first-boot script (backend/firstboot.sh)
    blinkpay/terminal.env     device id, broker, shard, mode (checked values only)
    blinkpay/enrolment.token  the one-time token (only its hash stays at the host)
    blinkpay/host.pub.pem     the host's public key: it verifies the host's answers
    blinkpay/pin.key          the PIN block key shared with the host (removed on first boot)
    blinkpay/mqtt.password    the terminal's own broker password (docs/broker.md; removed
                              on first boot, only its hash stays at the host)
    blinkpay/ca.pem           the site broker's CA, when the broker uses TLS
    blinkpay/operator.pub.pem the operator's bundle key, and blinkpay/bundle.tar.gz
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from device.errors import BlinkpayError
from device.net.schemas import check_id

BOOT_MOUNT = "/boot/firmware"  # where Raspberry Pi OS Bookworm mounts the boot partition
FOLDER = "blinkpay"
# The groups Raspberry Pi Imager gives the first user.
ADMIN_GROUPS = (
    "users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo"
)


class BootConfig(BaseModel):
    """host.toml [boot]: what `device add --boot-dir` puts on a terminal's card."""

    model_config = ConfigDict(extra="forbid")

    # The broker as the terminals reach it (default: the host's own mqtt.url).
    broker_url: str | None = Field(default=None, pattern=r"^mqtts?://[^\s/]+(:\d+)?$")
    ca_file: Path | None = None  # the broker's CA (default: the host's mqtt.ca_file)
    operator_public_key_file: Path | None = None  # verifies signed bundles on the terminal
    token_ttl_s: float = Field(default=7 * 86_400.0, gt=0.0, allow_inf_nan=False)
    admin_user: str = Field(default="pi", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_authorized_keys_file: Path | None = None  # the admin user's keys (no password)
    timezone: str = Field(default="Etc/UTC", pattern=r"^[A-Za-z0-9_+/-]{1,64}$")
    mode: str = Field(default="turnstile", pattern=r"^(turnstile|vending)$")
    # Wi-Fi: the network's name, its passphrase in a file of its own (a secret, not in
    # host.toml), the country whose radio rules apply.
    wifi_ssid: str | None = Field(default=None, min_length=1, max_length=32)
    wifi_psk_file: Path | None = None
    wifi_country: str = Field(default="GB", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _wifi_together(self) -> Self:
        if (self.wifi_ssid is None) != (self.wifi_psk_file is None):
            raise ValueError("wifi_ssid and wifi_psk_file go together")
        return self


@dataclass(frozen=True)
class BootFiles:
    """What one card gets; paths are read, never changed."""

    device_id: str
    broker_url: str
    shard_id: str
    token: str
    host_public_pem: bytes
    pin_key_file: Path
    boot: BootConfig
    ca_file: Path | None = None
    bundle: Path | None = None
    mqtt_password: str | None = None  # the terminal's broker password (backend/broker.py)


def user_data(device_id: str, boot: BootConfig, ssh_keys: list[str]) -> str:
    """cloud-init user-data as Raspberry Pi Imager writes it, plus the first-boot runcmd."""
    user: dict[str, Any] = {
        "name": boot.admin_user,
        "groups": ADMIN_GROUPS,
        "shell": "/bin/bash",
        "lock_passwd": True,  # no password: SSH keys only (or none: a sealed terminal)
    }
    if ssh_keys:
        user["ssh_authorized_keys"] = ssh_keys
    folder = f"{BOOT_MOUNT}/{FOLDER}"
    document = {
        "hostname": device_id,
        "manage_etc_hosts": True,
        "timezone": boot.timezone,
        "users": [user],
        "ssh_pwauth": False,
        "runcmd": [["bash", f"{folder}/firstboot.sh", folder]],
    }
    header = (
        "#cloud-config\n"
        f"# blinkpay terminal {device_id}: written by `blinkpay-host device add`, in\n"
        "# Raspberry Pi Imager's layout. runcmd runs once, at the end of the first boot.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def network_config(boot: BootConfig) -> str | None:
    """netplan v2 Wi-Fi for cloud-init, as Raspberry Pi Imager writes it; None for wired."""
    if boot.wifi_ssid is None or boot.wifi_psk_file is None:
        return None
    psk = boot.wifi_psk_file.read_text(encoding="utf-8").strip()
    if not 8 <= len(psk) <= 63:
        raise BlinkpayError(f"{boot.wifi_psk_file}: a Wi-Fi passphrase has 8 to 63 characters")
    wlan0 = {
        "dhcp4": True,
        "regulatory-domain": boot.wifi_country,
        "access-points": {boot.wifi_ssid: {"password": psk}},
        "optional": True,
    }
    document = {"network": {"version": 2, "wifis": {"renderer": "NetworkManager", "wlan0": wlan0}}}
    return "# Wi-Fi for cloud-init, written by `blinkpay-host device add`\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def terminal_env(files: BootFiles) -> str:
    values = {
        "DEVICE_ID": files.device_id,
        "BROKER": files.broker_url,
        "SHARD_ID": files.shard_id,
        "MODE": files.boot.mode,
        "TLS": "1" if files.ca_file is not None else "0",
    }
    return "".join(f"{k}={v}\n" for k, v in values.items())


def _ssh_keys(path: Path | None) -> list[str]:
    if path is None:
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def check_boot_files(files: BootFiles) -> None:
    """Refuse what would make a card that cannot come online, before a token is issued."""
    for name, value in (("device id", files.device_id), ("shard id", files.shard_id)):
        try:
            check_id(value, name)
        except ValueError as exc:
            raise BlinkpayError(str(exc)) from None
    if files.broker_url.startswith("mqtts://") and files.ca_file is None:
        raise BlinkpayError("an mqtts:// broker needs its CA: set [boot] ca_file in host.toml")
    network_config(files.boot)  # a passphrase that cannot work
    if files.bundle is not None and files.boot.operator_public_key_file is None:
        raise BlinkpayError(
            "--bundle needs the operator's public key to verify it on the terminal: "
            "set [boot] operator_public_key_file in host.toml"
        )


def write_boot_files(target: Path, files: BootFiles) -> list[str]:
    """Write everything into `target` (the mounted boot partition, or a folder to copy
    from); returns the names written. Existing files of an earlier card are replaced."""
    check_boot_files(files)
    folder = target / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ssh_keys = _ssh_keys(files.boot.ssh_authorized_keys_file)
    script = resources.files("backend").joinpath("firstboot.sh").read_text(encoding="utf-8")
    texts = {
        "user-data": user_data(files.device_id, files.boot, ssh_keys),
        f"{FOLDER}/firstboot.sh": script,
        f"{FOLDER}/terminal.env": terminal_env(files),
        f"{FOLDER}/enrolment.token": files.token + "\n",
        f"{FOLDER}/host.pub.pem": files.host_public_pem.decode("ascii"),
    }
    if files.mqtt_password is not None:
        texts[f"{FOLDER}/mqtt.password"] = files.mqtt_password + "\n"
    wifi = network_config(files.boot)
    if wifi is not None:
        texts["network-config"] = wifi
    for name, text in texts.items():
        (target / name).write_text(text, encoding="utf-8")
    copies = {f"{FOLDER}/pin.key": files.pin_key_file}
    if files.ca_file is not None:
        copies[f"{FOLDER}/ca.pem"] = files.ca_file
    if files.boot.operator_public_key_file is not None:
        copies[f"{FOLDER}/operator.pub.pem"] = files.boot.operator_public_key_file
    if files.bundle is not None:
        copies[f"{FOLDER}/bundle.tar.gz"] = files.bundle
    for name, source in copies.items():
        shutil.copyfile(source, target / name)
    # FAT ignores modes; a host folder does not
    secrets = ("enrolment.token", "pin.key", "mqtt.password")
    for secret in (*(folder / name for name in secrets), target / "network-config"):
        with contextlib.suppress(OSError):
            os.chmod(secret, 0o600)
    return sorted([*texts, *copies])
