"""The terminal's side of an embedder change (docs/matching.md, "Changing the embedder").

While the shard migrates to another embedder (its snapshots and deltas carry `migration`)
and this terminal ships that embedder, the vision pipeline also runs it on the aligned
faces (`FacePipeline.next_embedder`) and the face book keeps those vectors per track. When a
payment's approved ledger row has committed, the bound track's new-embedder vectors are
fused the way the match fuses its own, sealed to the host's key, signed, bound to the
transaction and sent on the terminal's `retemplate` topic. No image is kept for it.

When the operator switches the shard, the next signed snapshot names the new embedder and
the store refuses it (`offered_embedder`). If this terminal ships that embedder, it changes
embedder live as soon as the session is idle: the pipeline embeds with it, the store drops
the old index and expects the new one, a snapshot is asked for, and `vision.embedder` is
persisted to the remote overlay so a restart keeps it. A terminal that does not ship it
keeps refusing the shard and says so (its index stays empty: nobody is matched).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from device.net.retemplate import retemplate_message
from device.shell.face_book import FaceBook
from device.store.shard import TemplateShard

log = logging.getLogger("blinkpay.migration")

CHECK_EVERY_S = 1.0  # how often the shard's migration state is read (one SQLite row)


class Embedder(Protocol):
    version: str
    dim: int


class MigrationPipeline(Protocol):
    embedder: Any
    next_embedder: Any


class EmbedderChange:
    def __init__(
        self,
        *,
        pipeline: MigrationPipeline,
        shard: TemplateShard,
        faces: FaceBook,
        shipped: Mapping[str, str],
        load_embedder: Callable[[str], Embedder],
        device_id: str,
        sign: Callable[[dict[str, Any]], str],
        publish: Callable[[dict[str, Any]], bool] | None,
        resync: Callable[[], object] | None,
        persist: Callable[[str], None] | None,
        observer: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """shipped: embedder version -> its `vision.embedder` name, for every embedder this
        terminal has the model of; load_embedder(name) builds one; publish sends a
        retemplate message; resync asks for a snapshot; persist(name) keeps the choice."""
        self.pipeline, self.shard, self.faces = pipeline, shard, faces
        self.shipped = dict(shipped)
        self._load, self.device_id, self._sign = load_embedder, device_id, sign
        self._publish, self._resync, self._persist = publish, resync, persist
        self._observer = observer
        self._next_check = 0.0
        self.counters: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- main thread, every tick ------------------------------------------------------------

    def tick(self, now: float, idle: bool) -> None:
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        try:
            self._follow_migration()
            offered = self.shard.offered_embedder
            if offered is not None and idle:
                self._switch(*offered)
        except Exception:  # a model that does not load: logged, tried again next time
            log.exception("embedder change failed", extra={"event": "embedder_change_error"})
            self._count("errors")

    def _follow_migration(self) -> None:
        info = self.shard.info()
        migration = info.migration if info is not None else None
        want = migration.embedder_version if migration is not None else None
        if want is not None and want not in self.shipped:
            want = None  # this terminal cannot help; the others collect the templates
        loaded = self.pipeline.next_embedder
        if (loaded.version if loaded is not None else None) == want:
            return
        if want is None:
            self.pipeline.next_embedder = None
            log.info("embedder migration over", extra={"event": "migration_stop"})
            return
        embedder = self._load(self.shipped[want])
        if migration is not None and embedder.dim != migration.dim:
            log.error("embedder %s is %d-D, the shard says %d", want, embedder.dim, migration.dim)
            self._count("wrong_dim")
            return
        self.pipeline.next_embedder = embedder
        log.info(
            "embedder migration: computing %s too",
            want,
            extra={"event": "migration_start", "to": want},
        )

    def _switch(self, version: str, dim: int) -> None:
        current = self.pipeline.embedder
        if current is not None and current.version == version:
            return
        name = self.shipped.get(version)
        if name is None:
            if self.counters.get("cannot_switch", 0) == 0:
                log.error(
                    "the shard was switched to embedder %s, which this terminal does not ship; "
                    "update the terminal's models (nobody is matched until then)",
                    version,
                    extra={"event": "embedder_missing", "to": version},
                )
            self._count("cannot_switch")
            return
        loaded = self.pipeline.next_embedder
        embedder = loaded if loaded is not None and loaded.version == version else self._load(name)
        if embedder.dim != dim:
            log.error("embedder %s is %d-D, the shard says %d", version, embedder.dim, dim)
            self._count("wrong_dim")
            return
        self.pipeline.embedder = embedder
        self.pipeline.next_embedder = None
        self.faces.clear()
        self.shard.expect(version, dim)
        if self._persist is not None:
            self._persist(name)
        if self._resync is not None:
            self._resync()
        self._count("switched")
        log.warning(
            "embedder changed to %s (%s): the shard was switched",
            name,
            version,
            extra={"event": "embedder_switched", "to": version},
        )
        if self._observer is not None:
            self._observer("embedder", {"version": version, "name": name})

    # -- main thread, after a payment's approved row committed ------------------------------

    def paid(self, tx_id: str, token: str, track_id: int | None) -> bool:
        """Send the new embedder's template of the face that just paid; False when there
        is no migration this terminal can help with, or no vector of that face."""
        embedder = self.pipeline.next_embedder
        info = self.shard.info()
        migration = info.migration if info is not None else None
        if embedder is None or migration is None or self._publish is None or track_id is None:
            return False
        if embedder.version != migration.embedder_version:
            return False
        fused = self.faces.fused_next(track_id, embedder.version)
        if fused is None:
            self._count("no_vector")
            return False
        vector, frames = fused
        message = retemplate_message(
            device_id=self.device_id,
            shard_id=info.shard_id,  # type: ignore[union-attr]
            tx_id=tx_id,
            token=token,
            vector=vector,
            embedder_version=embedder.version,
            frames=frames,
            host_key_b64=migration.host_key,
            sign=self._sign,
        )
        sent = self._publish(message)
        self._count("sent" if sent else "not_sent")
        log.info(
            "retemplate %s",
            "sent" if sent else "not sent (offline)",
            extra={"event": "retemplate", "tx_id": tx_id, "frames": frames},
        )
        return bool(sent)
