"""Store consistency checks (`blinkpay db verify`, selftest): every record decrypts, the
index agrees with the table, accounts and templates match."""

from __future__ import annotations

from collections import Counter

import numpy as np

from device.selftest.check import Check
from device.store.db import SCHEMA_VERSION
from device.store.ledger_chain import LedgerIntegrityError, read_anchor, verify
from device.store.sealing import UnsealError
from device.store.terminal_store import Store
from device.store.updates import NORM_TOLERANCE

# int8 codes keep a template's cosine to its record near 0.9999; another user's is far lower.
_MIN_INDEX_COSINE = 0.99


def verify_store(store: Store) -> list[Check]:
    """Integrity check, every record decrypts to a valid template, index matches table."""
    checks = [
        _integrity(store),
        Check(
            "store.schema",
            store.database.schema_version() == SCHEMA_VERSION,
            f"schema version {store.database.schema_version()} (software {SCHEMA_VERSION})",
        ),
        _ledger_chain(store),
    ]
    info = store.shard.info()
    if info is None:
        checks.append(Check("store.shard", True, "no shard yet (waiting for a snapshot)"))
        return checks
    checks.append(
        Check(
            "store.shard",
            info.version == info.last_seq,
            f"shard {info.shard_id} version {info.version} embedder {info.embedder_version} "
            f"dim {info.dim}",
        )
    )
    decrypted, problems = _decrypt_all(store, info.dim)
    checks.append(
        Check(
            "store.templates",
            not problems,
            f"{len(decrypted)} templates decrypt to finite unit vectors"
            if not problems
            else f"{len(problems)} bad: " + "; ".join(problems[:5]),
        )
    )
    checks.append(_accounts_match_templates(store, set(decrypted)))
    checks.append(_index_matches_table(store, decrypted))
    return checks


def _ledger_chain(store: Store) -> Check:
    """The ledger's hash chain is whole and reaches its anchor (rows deleted, an emptied
    ledger): checked read-only, the anchor is never moved here."""
    path = store.ledger.anchor_path
    try:
        anchor = None if path is None else read_anchor(path)
        with store.database.lock:
            head = verify(store.database.db, anchor)
    except LedgerIntegrityError as exc:
        return Check("ledger.chain", False, str(exc))
    return Check(
        "ledger.chain", True, f"{head.rows} rows chained up to seq {head.seq}, anchor reached"
    )


def _integrity(store: Store) -> Check:
    problems = store.database.integrity_problems()
    detail = "PRAGMA integrity_check: ok" if not problems else "; ".join(problems[:5])
    return Check("store.integrity", not problems, detail)


def _decrypt_all(store: Store, dim: int) -> tuple[dict[str, np.ndarray], list[str]]:
    info = store.shard.info()
    assert info is not None
    decrypted: dict[str, np.ndarray] = {}
    problems: list[str] = []
    with store.database.lock:
        rows = store.database.db.execute(
            "SELECT token, nonce, ciphertext FROM templates"
        ).fetchall()
    sealer = store.shard.sealer
    for token, nonce, ciphertext in rows:
        try:
            data = sealer.unseal(token, info.shard_id, info.embedder_version, nonce, ciphertext)
        except UnsealError as exc:
            problems.append(str(exc))
            continue
        if len(data) != 4 * dim:
            problems.append(f"template of {token!r} has {len(data)} bytes, expected {4 * dim}")
            continue
        vector = np.frombuffer(data, dtype="<f4")
        norm = float(np.linalg.norm(vector.astype(np.float64)))
        if not np.isfinite(vector).all() or abs(norm - 1.0) > NORM_TOLERANCE:
            problems.append(f"template of {token!r} is not a finite unit vector")
            continue
        decrypted[token] = vector
    return decrypted, problems


def _accounts_match_templates(store: Store, templates: set[str]) -> Check:
    with store.database.lock:
        accounts = {row[0] for row in store.database.db.execute("SELECT token FROM accounts")}
        stored = {row[0] for row in store.database.db.execute("SELECT token FROM templates")}
    orphans = len(stored - accounts)
    missing = len(accounts - stored)
    ok = not orphans and not missing
    return Check(
        "store.accounts",
        ok,
        f"{len(accounts)} accounts, each with one template"
        if ok
        else f"{orphans} templates without an account, {missing} accounts without a template",
    )


def _index_matches_table(store: Store, decrypted: dict[str, np.ndarray]) -> Check:
    active = set(store.shard.tokens_with_status(["active"])) & set(decrypted)
    tokens, vectors = store.shard.index.vectors()
    if store.shard.stale_reason is not None:
        return Check("store.index", False, f"index not loaded: {store.shard.stale_reason}")
    counts = Counter(tokens)
    extra = set(tokens) - active
    missing = active - set(tokens)
    duplicated = [t for t, n in counts.items() if n > 1]
    off = 0
    if tokens and not extra and not duplicated:
        expected = np.stack([decrypted[t] for t in tokens])
        cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(vectors, axis=1)
        off = int((~(cosines >= _MIN_INDEX_COSINE)).sum())
    ok = not extra and not missing and not duplicated and not off
    detail = (
        f"{len(tokens)} active templates in the index, each matching its record"
        if ok
        else f"{len(extra)} in the index but not active, {len(missing)} active but not in the "
        f"index, {len(duplicated)} duplicated, {off} differing from their record"
    )
    return Check("store.index", ok, detail)
