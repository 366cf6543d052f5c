"""`blinkpay register`: first boot, after `blinkpay provision`: send this terminal's own
public key to the host with the one-time enrolment token, and wait for the host's signed
answer. The first-boot script runs it; a field engineer can too, with a new token."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args
from device.errors import BlinkpayError, os_error_line

HELP = "register this terminal's key with the host (one-time enrolment token)"
TOKEN_HELP = (
    "the file with the one-time enrolment token (`blinkpay-host device add --boot-dir` "
    "writes it as blinkpay/enrolment.token); - reads it from stdin"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--token", metavar="FILE", required=True, help=TOKEN_HELP)
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        help="seconds to wait for the broker and the host's answer (default 120)",
    )


def _token(source: str) -> str:
    try:
        text = sys.stdin.readline() if source == "-" else Path(source).read_text("ascii")
    except OSError as exc:
        raise BlinkpayError(f"--token {os_error_line(exc)}") from None
    except UnicodeDecodeError:
        raise BlinkpayError(f"--token {source}: not an enrolment token") from None
    token = text.strip()
    if not 16 <= len(token) <= 128 or not token.replace("-", "").replace("_", "").isalnum():
        raise BlinkpayError(f"--token {source}: not an enrolment token")
    return token


def run(args: argparse.Namespace) -> int:
    from device.crypto.signing import KeyFileError, load_public_key, load_signing_key
    from device.crypto.template_box import box_public_pem, load_box_key
    from device.net.register import register
    from device.store.terminal_store import store_key_paths

    config = config_from_args(args)
    token = _token(args.token)
    if not config.mqtt.enabled or config.mqtt.backend_public_key_file is None:
        raise BlinkpayError(
            "the config has no broker or no host key (mqtt.enabled, "
            "mqtt.backend_public_key_file): run `blinkpay provision --broker ... --backend-key ...`"
        )
    paths = store_key_paths(config.store, config.device.data_dir)
    try:
        key = load_signing_key(paths.signing_key)
        box = box_public_pem(load_box_key(Path(config.device.data_dir) / config.store.box_key_file))
        host_key = load_public_key(config.mqtt.backend_public_key_file)
    except (KeyFileError, ValueError) as exc:
        raise BlinkpayError(str(exc)) from None
    device_id = config.device.id
    answer = register(
        config.mqtt, device_id, key, box.decode("ascii"), token, host_key, timeout_s=args.wait
    )
    if answer is None:
        raise BlinkpayError(
            f"the broker at {config.mqtt.url} answered, the host did not in {args.wait:.0f} s: "
            "check that `blinkpay-host serve` runs on that broker (same mqtt.prefix)"
        )
    if not answer.registered:
        raise BlinkpayError(answer.line(device_id))
    print(answer.line(device_id), flush=True)
    return 0
