"""Ports: what the shell and the sync need of adapters, as typing Protocols (no I/O here).

The transaction ledger (device/store/ledger.py's Ledger) is one port for both of its users:
the effect executor records and settles transactions, the outbox sync reads what waits for
the host and marks what it acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol


class LedgerPort(Protocol):
    def get(self, tx_id: str) -> Any: ...

    def record(
        self,
        document: Mapping[str, Any],
        status: Any,
        reasons: Sequence[str],
        sign: Callable[[dict[str, Any]], str] | None = None,
    ) -> str: ...

    def settle(
        self,
        tx_id: str,
        status: Any,
        reasons: Sequence[str],
        *,
        token: str | None,
        offline: bool,
        sign: Callable[[dict[str, Any]], str],
    ) -> Any: ...

    def pending_sync(self, limit: int) -> Sequence[Any]: ...

    def mark_acked(self, tx_id: str, status: str | None = None) -> Any: ...

    def depth(self) -> int: ...
