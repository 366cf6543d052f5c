"""The parts of one terminal: keys from provisioning, the models, the store (its ledger
checked before anything runs), the hardware and, in vending mode, the machine's controller.
Nothing here starts a thread; a part that cannot open tells the fleet why (`fault`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.clock import Clock
from device.config import Config
from device.crypto.signing import load_signing_key
from device.hw.devices import Hardware, open_hardware
from device.provisioning import read_pin_key
from device.shell.effects import HostPort, Observer
from device.shell.terminal import Post, Terminal
from device.store.ledger_chain import LedgerIntegrityError
from device.store.terminal_store import Store, check_at_start, open_store
from device.vending.factory import open_controller
from device.vending.port import VendingController
from device.vision.pipeline import FacePipeline

if TYPE_CHECKING:
    from device.net.service import NetService

log = logging.getLogger("blinkpay.app")

FAULT_REPORT_S = 5.0  # how long a terminal that will not start tries to tell the broker


def pin_key_path(config: Config) -> Path:
    return Path(config.device.data_dir) / config.store.pin_key_file


def load_pin_key(config: Config) -> bytes:
    """The AES PIN key shared with the host (hex in a 0600 file, made by provision)."""
    return read_pin_key(pin_key_path(config))


@dataclass
class Parts:
    """The adapters of one terminal; close() puts the hardware in its safe state first."""

    config: Config
    clock: Clock
    hardware: Hardware
    store: Store
    pipeline: FacePipeline
    signing_key: Ed25519PrivateKey
    pin_key: bytes
    net: NetService | None = None  # once started
    vending: VendingController | None = None  # vending mode: the machine's link (not started)

    relay_energised_at_stop: bool | None = None  # read back from the pin after release

    def terminal(
        self,
        post: Post,
        host: HostPort | None,
        observer: Observer | None = None,
        *,
        config: Config | None = None,
        vending: VendingController | Literal["parts"] | None = "parts",
    ) -> Terminal:
        """The terminal's decisions over these parts (the caller starts the vending
        controller, the keypad and the camera once it exists). `config` and `vending`
        replace the parts' own (the demo runs one terminal per mode over one set of parts)."""
        return Terminal(
            config or self.config,
            pipeline=self.pipeline,
            store=self.store,
            hardware=self.hardware,
            clock=self.clock,
            signing_key=self.signing_key,
            pin_key=self.pin_key,
            post=post,
            host=host,
            observer=observer,
            vending=self.vending if vending == "parts" else vending,
        )

    def close(self) -> None:
        try:
            self.hardware.relay.release()  # the safe state before anything else can fail
            self.relay_energised_at_stop = self.hardware.relay.read_back()
            self.hardware.close()
        finally:
            if self.vending is not None:
                try:
                    self.vending.close()
                except Exception:
                    log.exception("vending controller close failed")
            if self.net is not None:
                try:
                    self.net.stop()
                except Exception:
                    log.exception("network stop failed")
            self.store.close()


def open_parts(config: Config, *, sim: bool, clock: Clock) -> Parts:
    """Models, store (keys from provisioning), hardware; no threads started yet."""
    pipeline = FacePipeline.from_config(config.vision)
    embedder = pipeline.embedder
    assert embedder is not None
    signing_key = load_signing_key(Path(config.device.data_dir) / config.store.signing_key_file)
    pin_key = load_pin_key(config)
    try:
        store = open_store(
            config.store,
            config.device.data_dir,
            embedder.version,
            embedder.dim,
            config.mqtt.shard_id,
        )
    except LedgerIntegrityError as exc:
        report_fault(config, "ledger", str(exc))
        raise
    try:
        check_at_start(store)
    except LedgerIntegrityError as exc:
        store.close()
        report_fault(config, "ledger", str(exc))
        raise
    try:
        hardware = open_hardware(config.hardware, clock, sim or config.hardware.backend == "sim")
    except BaseException:
        store.close()
        raise
    parts = Parts(config, clock, hardware, store, pipeline, signing_key, pin_key)
    if config.device.mode == "vending":
        parts.vending = open_controller(config.vending, clock)
    return parts


def report_fault(config: Config, reason: str, detail: str) -> None:
    """Tell the fleet (retained status `fault`) and the log why the terminal will not start."""
    log.critical(detail, extra={"event": "fault", "reason": reason})
    if not config.mqtt.enabled:
        return
    from device.net.client import MqttLink
    from device.net.topics import DeviceTopics

    link = MqttLink(config.mqtt, f"{config.device.id}-fault")
    link.start()
    try:
        topic = DeviceTopics(config.mqtt.prefix, config.device.id).status
        if not (link.wait_connected(FAULT_REPORT_S) and link.publish_fault(topic, reason, detail)):
            log.error("could not publish the fault status to %s", config.mqtt.url)
    finally:
        link.stop()
