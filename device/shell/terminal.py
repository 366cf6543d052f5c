"""One terminal: the pure session wired to the vision pipeline, the store and the hardware.

`Terminal` is what both `blinkpay run` (device/app/runtime.py, threads around a MainLoop) and
`blinkpay demo` (device/demo/scenes.py, frames fed one by one) drive. Everything except
`process_frame` runs on one thread (the main loop), so the session needs no lock:

    process_frame(frame)  -> FrameFaces    (vision thread: detect, mesh, eyes, embed)
    handle(event, now)                     (main thread: FrameFaces, key presses, core events)
    tick(now)                              (main thread: timeouts, passage contact)

Results that arrive later (match, host answers) come back through `post`, the main
loop's queue, so a handler never re-enters the session.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

import uuid6
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.clock import Clock
from device.config import Config, keep_embedder
from device.core import policy
from device.core.events import (
    AuthUnavailable,
    Effect,
    Event,
    KeyPressed,
    MatchResult,
    PassageSeen,
    RequestMatch,
    StartChallenge,
    StopChallenge,
    Tick,
    UpdateLedger,
)
from device.core.liveness import BlinkTracker
from device.core.match import decide, for_gallery
from device.core.pin_entry import SecretPin
from device.core.session import PinEncryptor, Session
from device.crypto.pinblock import RANDOM_FILL_BYTES, encipher_pin_block, pan_for_token
from device.crypto.signing import sign_document
from device.hw.camera.frames import Frame
from device.hw.devices import Hardware
from device.hw.keypad import KeyEvent
from device.shell.challenge import ChallengeRunner
from device.shell.effects import EffectExecutor, HostPort, Observer, created_at
from device.shell.face_book import FaceBook, FrameFaces
from device.shell.lockout_sync import LockoutKeeper
from device.shell.migration import EmbedderChange
from device.shell.vending import VendingDriver
from device.store.terminal_store import Store
from device.vending.port import VendingController
from device.vision.pipeline import FacePipeline

log = logging.getLogger("blinkpay.terminal")

Post = Callable[[object], object]
STORAGE_PROBE_S = 5.0  # how often a terminal out of service tries its storage again


def new_tx_id() -> str:
    return str(uuid6.uuid7())


def session_from_config(
    config: Config,
    *,
    new_tx_id: Callable[[], str],
    encrypt_pin: PinEncryptor,
    passage_sensor: bool = True,
    lockouts: Mapping[str, policy.PinLockout] | None = None,
    challenge_light: bool = False,
    vend_session: bool = False,
) -> Session:
    """The session on plain values from their config sections (timeouts live with the part
    they time: the host's answer under mqtt, the relay and the gate under hardware). The
    illumination challenge runs only where there is a challenge light to play it."""
    return Session(
        config.session,
        config.payment,
        config.device.mode,
        new_tx_id=new_tx_id,
        encrypt_pin=encrypt_pin,
        auth_timeout_s=config.mqtt.auth_timeout_s,
        relay_pulse_ms=config.hardware.relay_pulse_ms,
        passage_timeout_s=config.hardware.passage_timeout_s if passage_sensor else None,
        lockouts=lockouts,
        vend_session=vend_session,
        challenge=config.challenge if challenge_light else None,
        randbelow=secrets.randbelow,
    )


class Terminal:
    def __init__(
        self,
        config: Config,
        *,
        pipeline: FacePipeline,
        store: Store,
        hardware: Hardware,
        clock: Clock,
        signing_key: Ed25519PrivateKey,
        pin_key: bytes,
        post: Post,
        host: HostPort | None = None,
        observer: Observer | None = None,
        vending: VendingController | None = None,
    ) -> None:
        """vending: the vending machine's controller (vending mode); the caller starts
        and closes it."""
        self.config, self.pipeline, self.store = config, pipeline, store
        self.hw, self.clock, self._post = hardware, clock, post
        self._pin_key = pin_key
        self.lockouts = LockoutKeeper(store.database, clock)
        self.session = session_from_config(
            config,
            new_tx_id=new_tx_id,
            encrypt_pin=self._encrypt_pin,
            passage_sensor=hardware.passage is not None,
            lockouts=self.lockouts.loaded,
            challenge_light=hardware.challenge_light is not None,
            vend_session=vending is not None and config.device.mode == "vending",
        )
        self.challenge = None
        if hardware.challenge_light is not None:
            self.challenge = ChallengeRunner(hardware.challenge_light, config.challenge, observer)
        self.vending: VendingDriver | None = None
        if vending is not None and config.device.mode == "vending":
            self.vending = VendingDriver(vending, self._session, post, lambda: _online(host))
        self.faces = FaceBook(lambda: BlinkTracker(config.liveness))
        self.executor = EffectExecutor(
            hardware,
            store.ledger,
            clock,
            device_id=config.device.id,
            sign=lambda document: sign_document(document, signing_key),
            match=self._match,
            host=host,
            on_no_host=lambda request: self._post(
                AuthUnavailable(clock.monotonic(), request.tx_id)
            ),
            observer=observer,
            vend=None if self.vending is None else self.vending.approve,
            on_storage_fault=self._storage_fault,
        )
        self.observer = observer
        self.migration = _embedder_change(self, host, signing_key)
        self._matched_track: int | None = None  # the track of the last match asked for
        self.frames = 0
        # Set while storage cannot commit a ledger row: no new payment starts, LEDs say fault.
        self.out_of_service: str | None = None
        self._next_probe = 0.0

    # -- vision thread ----------------------------------------------------------------------
    def process_frame(self, frame: Frame) -> FrameFaces:
        """Faces in one frame; the image itself goes no further than this call."""
        faces = self.pipeline.process(frame.rgb, frame.timestamp)
        return FrameFaces(frame.timestamp, faces)

    # -- main thread ------------------------------------------------------------------------
    def handle(self, event: object, now: float) -> None:
        if self.out_of_service is not None and isinstance(event, FrameFaces | KeyEvent):
            return  # nobody may start paying; answers and ticks still end the current attempt
        if isinstance(event, FrameFaces):
            self.frames += 1
            for face_event in self.faces.frame(event, self.session.track_id):
                self._session(face_event)
            if self.challenge is not None:
                for challenge_event in self.challenge.frame(event):
                    self._session(challenge_event)
        elif isinstance(event, KeyEvent):
            self._session(KeyPressed(now, event.key))
        elif isinstance(event, Event):  # type: ignore[arg-type]
            self._session(event)
        else:
            log.warning("unknown event %s ignored", type(event).__name__)

    def tick(self, now: float) -> None:
        if self.out_of_service is not None and now >= self._next_probe:
            self._probe_storage(now)
        passage = self.hw.passage
        if passage is not None and passage.status() == "passed":
            passage.disarm()
            self._session(PassageSeen(now))
        for event in self.faces.tick(now):
            self._session(event)
        if self.migration is not None:
            self.migration.tick(now, idle=self.session.state == "idle")
        if self.vending is not None:
            self.vending.poll()
        if self.challenge is not None:
            for event in self.challenge.tick(now):
                self._session(event)
        self._session(Tick(now))

    def _session(self, event: Event) -> None:
        effects = self.session.handle(event)
        if effects:
            self.lockouts.save_if_changed(self.session.lockouts)
            self.executor.run(self._challenge_effects(effects), event.now)
            if self.vending is not None:
                self.vending.after(effects, event.now)
            if self.migration is not None:
                self._after_payment(effects)

    def _after_payment(self, effects: list[Effect]) -> None:
        """An approved payment whose row committed: during an embedder migration, the new
        embedder's template of the face that paid goes to the host (device/shell/migration.py)."""
        for effect in effects:
            if not isinstance(effect, UpdateLedger) or effect.status != "approved":
                continue
            row = self.store.ledger.get(effect.tx_id)
            if row is None or row.status != "approved" or not effect.token:
                continue
            try:
                self.migration.paid(effect.tx_id, effect.token, self._matched_track)  # type: ignore[union-attr]
            except Exception:  # the payment stands whatever happens to its retemplate
                log.exception("retemplate failed", extra={"event": "retemplate_error"})

    def _challenge_effects(self, effects: list[Effect]) -> list[Effect]:
        """Start or stop the challenge here; every other effect goes to the executor."""
        rest: list[Effect] = []
        for effect in effects:
            if isinstance(effect, StartChallenge) and self.challenge is not None:
                self.challenge.start(effect)
            elif isinstance(effect, StopChallenge) and self.challenge is not None:
                self.challenge.stop()
            elif not isinstance(effect, StartChallenge | StopChallenge):
                rest.append(effect)
        return rest

    # -- out of service ---------------------------------------------------------------------
    def _storage_fault(self, detail: str) -> None:
        if self.out_of_service is None:
            log.error(
                "out of service: the ledger cannot be written (%s)",
                detail,
                extra={"event": "out_of_service", "detail": detail},
            )
            self._next_probe = self.clock.monotonic() + STORAGE_PROBE_S
        self.out_of_service = detail
        self.hw.leds.show("fault")
        self._tell("service", state="out_of_service", detail=detail)

    def _probe_storage(self, now: float) -> None:
        """Back in service once a ledger-sized write commits and the session is idle again;
        rows the failure left pending are declined (they sync; nothing was actuated)."""
        self._next_probe = now + STORAGE_PROBE_S
        if self.session.state != "idle":
            return
        try:
            self.store.database.probe()
            declined = self.store.ledger.recover_interrupted()
        except Exception as exc:
            log.warning("storage still failing: %s", exc, extra={"event": "storage_probe"})
            return
        log.warning(
            "back in service: storage works again",
            extra={"event": "in_service", "declined": len(declined)},
        )
        self.out_of_service = None
        self.hw.leds.show("idle")
        self._tell("service", state="in_service", detail="")

    def _tell(self, what: str, **details: object) -> None:
        if self.observer is not None:
            self.observer(what, dict(details))

    # -- helpers the session's effects call -------------------------------------------------
    def _encrypt_pin(self, pin: SecretPin, token: str) -> bytes:
        return encipher_pin_block(
            self._pin_key,
            pin.reveal(),
            pan_for_token(token),
            secrets.token_bytes(RANDOM_FILL_BYTES),
        )

    def _match(self, request: RequestMatch) -> None:
        """1:N search of the track's fused embedding; the answer is posted to the loop."""
        now = self.clock.monotonic()
        self._matched_track = request.track_id
        query = self.faces.fused_embedding(request.track_id)
        # the PIN-less threshold in force for this shard's size (docs/matching.md)
        match = for_gallery(self.config.match, self.store.shard.gallery_size)
        # The store only searches (active accounts alone are indexed); the core decides.
        # The probe names its embedder: the store never compares it with another's templates.
        version = self.faces.embedding_version(request.track_id)
        if version is None and self.pipeline.embedder is not None:
            version = self.pipeline.embedder.version
        nearest = (
            []
            if query is None or version is None
            else self.store.shard.search(query, match.candidates + 1, version)
        )
        decision = decide(nearest, match)
        accounts = {token: self.account(token) for token in decision.candidates}
        log.info(
            "match %s",
            decision.kind,
            extra={"event": "match", "kind": decision.kind, "score": decision.score},
        )
        self._post(
            MatchResult(
                now,
                request.track_id,
                decision,
                {t: a for t, a in accounts.items() if a is not None},
            )
        )

    def keep_embedder(self, name: str) -> None:
        """After a live embedder change: persist it, and match with its calibrated [match]
        row from now on (cosines of two embedders are not comparable)."""
        row = keep_embedder(self.config.device.data_dir, name)
        if row:
            match = replace(self.config.match, **row)  # type: ignore[arg-type]
            self.config = self.config.model_copy(update={"match": match})

    def account(self, token: str) -> policy.Payer | None:
        """What the payment rules need to know about a user, from the shard and the ledger."""
        state = self.store.shard.account(token)
        if state is None:
            return None
        ledger = self.store.ledger
        wall = self.clock.time()
        day = datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%d")
        window_start = created_at(wall - self.config.payment.velocity_window_s)
        return policy.Payer(
            token=token,
            status=state.status,  # type: ignore[arg-type]
            spent_today=ledger.spent_today(token, day),
            payments_in_window=ledger.approved_since(token, window_start),
            offline_allowance_left=ledger.offline_remaining(token, day),
            daily_limit=state.daily_limit,
        )


def _embedder_change(
    terminal: Terminal, host: HostPort | None, signing_key: Ed25519PrivateKey
) -> EmbedderChange | None:
    """The embedder change of a terminal whose pipeline embeds (None: one that does not)."""
    pipeline = terminal.pipeline
    if pipeline is None or pipeline.embedder is None:  # rigs that inject faces have none
        return None
    config = terminal.config
    return EmbedderChange(
        pipeline=pipeline,
        shard=terminal.store.shard,
        faces=terminal.faces,
        shipped=pipeline.shipped_embedders(),
        load_embedder=pipeline.load_embedder,
        device_id=config.device.id,
        sign=lambda document: sign_document(document, signing_key),
        publish=getattr(host, "publish_retemplate", None),
        resync=getattr(host, "resync", None),
        persist=terminal.keep_embedder,
        observer=terminal.observer,
    )


def _online(host: HostPort | None) -> bool:
    """Whether the host can answer now (NetHost knows its link); no host: offline."""
    online = getattr(host, "online", None)
    return bool(online()) if callable(online) else False
