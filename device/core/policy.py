"""Payment rules, pure: what a payment needs (PIN or not), whether the device may let it
go to authorization, what the offline fallback decides, and the wrong-PIN lockout.

Everything the rules need comes in as plain data: the account as the store sees it
(`Payer`), the per-user lockouts (`PinLockout` by token), and `now` (monotonic
seconds, for the lockout). Every outcome carries Reason codes (docs/payment.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from device.core.config import PaymentConfig
from device.core.reasons import Reason

AccountStatus = Literal["active", "suspended", "revoked"]
MatchKind = Literal["match", "ambiguous", "unknown"]


@dataclass(frozen=True)
class Payer:
    """A payer as the payment rules see them: one user token's standing on this terminal,
    put together by the shell from the shard's account and the ledger (no biometrics).

    spent_today: approved minor units today (ledger); payments_in_window: approved
    payments in the last `velocity_window_s` (ledger); offline_allowance_left: what the
    host lets this user spend offline before the next sync; daily_limit: the account's own
    cap (None: the terminal's cap only).
    """

    token: str
    status: AccountStatus = "active"
    spent_today: int = 0
    payments_in_window: int = 0
    offline_allowance_left: int = 0
    daily_limit: int | None = None


@dataclass(frozen=True)
class PinLockout:
    """Wrong PINs typed for one user on this terminal; locked until `locked_until`."""

    failures: int = 0
    locked_until: float = 0.0


Lockouts = Mapping[str, PinLockout]


@dataclass(frozen=True)
class Precheck:
    """Before authorization: `decline` (reasons say why), `pin` (ask the PIN), or `go`."""

    outcome: Literal["decline", "pin", "go"]
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def pin_required(self) -> bool:
        return self.outcome == "pin"


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reasons: tuple[Reason, ...]


def amount_valid(amount: int | None, cfg: PaymentConfig) -> Reason | None:
    """None when the amount can be paid at all; else why not."""
    if amount is None:
        return Reason.AMOUNT_MISSING
    if amount <= 0:
        return Reason.AMOUNT_INVALID
    if amount > cfg.max_per_tx:
        return Reason.OVER_TX_CAP
    return None


def _account_problem(account: Payer | None, amount: int, cfg: PaymentConfig) -> Reason | None:
    if account is None:
        return Reason.ACCOUNT_UNKNOWN
    if account.status == "revoked":
        return Reason.ACCOUNT_REVOKED
    if account.status == "suspended":
        return Reason.ACCOUNT_SUSPENDED
    daily = cfg.max_per_user_day
    if account.daily_limit is not None:
        daily = min(daily, account.daily_limit)
    if account.spent_today + amount > daily:
        return Reason.OVER_DAILY_CAP
    if account.payments_in_window >= cfg.velocity_max:
        return Reason.VELOCITY
    return None


def precheck(
    amount: int | None,
    match_kind: MatchKind,
    tokens: Sequence[str],
    accounts: Mapping[str, Payer],
    lockouts: Lockouts,
    now: float,
    cfg: PaymentConfig,
) -> Precheck:
    """The device's rules before anything is sent to the host.

    `tokens` are the match candidates, best first (one for a clear match). With an
    ambiguous match the PIN picks the payer at the host, so the limits must hold for
    every candidate that is still payable; candidates that are not are dropped by the
    caller via `payable_tokens`.
    """
    problem = amount_valid(amount, cfg)
    if problem is not None or amount is None:
        return Precheck("decline", (problem or Reason.AMOUNT_MISSING,))
    if match_kind == "unknown" or not tokens:
        return Precheck("decline", (Reason.UNKNOWN_FACE,))
    payable = payable_tokens(amount, tokens, accounts, lockouts, now, cfg)
    if not payable:
        first = tokens[0]
        if locked_for(lockouts, first, now) > 0:
            return Precheck("decline", (Reason.PIN_LOCKED,))
        reason = _account_problem(accounts.get(first), amount, cfg)
        return Precheck("decline", (reason or Reason.ACCOUNT_UNKNOWN,))
    reasons: list[Reason] = []
    if match_kind == "ambiguous":
        reasons.append(Reason.PIN_AMBIGUOUS_MATCH)
    if amount > cfg.pin_over:
        reasons.append(Reason.PIN_OVER_LIMIT)
    return Precheck("pin" if reasons else "go", tuple(reasons))


def payable_tokens(
    amount: int,
    tokens: Sequence[str],
    accounts: Mapping[str, Payer],
    lockouts: Lockouts,
    now: float,
    cfg: PaymentConfig,
) -> tuple[str, ...]:
    """Candidates that are neither locked out nor blocked by an account rule, in order."""
    return tuple(
        t
        for t in tokens
        if locked_for(lockouts, t, now) <= 0
        and _account_problem(accounts.get(t), amount, cfg) is None
    )


@dataclass(frozen=True)
class VendFunds:
    """What a known customer may spend at a vending machine before choosing: `online` with
    the host reachable, `offline` under the offline rules (no PIN, floor, allowance)."""

    online: int
    offline: int


def vend_funds(
    tokens: Sequence[str], accounts: Mapping[str, Payer], cfg: PaymentConfig
) -> VendFunds:
    """The most any of the payable `tokens` may spend now: the per-transaction cap and each
    one's daily room; offline also the floor, the PIN-free limit and the allowance (an
    ambiguous match needs a PIN, so nothing offline)."""
    room = [_daily_room(accounts.get(t), cfg) for t in tokens]
    online = max(0, min([cfg.max_per_tx, *room])) if tokens else 0
    if len(tokens) != 1 or tokens[0] not in accounts:
        return VendFunds(online, 0)
    allowance = accounts[tokens[0]].offline_allowance_left
    offline = min(online, cfg.offline_floor_limit, cfg.pin_over, allowance)
    return VendFunds(online, max(0, offline))


def _daily_room(account: Payer | None, cfg: PaymentConfig) -> int:
    if account is None:
        return 0
    daily = cfg.max_per_user_day
    if account.daily_limit is not None:
        daily = min(daily, account.daily_limit)
    return daily - account.spent_today


def offline_verdict(
    amount: int, pin_used: bool, account: Payer | None, cfg: PaymentConfig
) -> Verdict:
    """The fallback when the host does not answer: small, PIN-less, within the allowance."""
    cause = (Reason.AUTH_TIMEOUT,)
    if pin_used:
        return Verdict(False, (*cause, Reason.OFFLINE_PIN_REQUIRED))
    if amount > cfg.offline_floor_limit:
        return Verdict(False, (*cause, Reason.OFFLINE_OVER_FLOOR))
    if account is None or account.offline_allowance_left < amount:
        return Verdict(False, (*cause, Reason.OFFLINE_ALLOWANCE))
    return Verdict(True, (*cause, Reason.APPROVED_OFFLINE))


def locked_for(lockouts: Lockouts, token: str, now: float) -> float:
    """Seconds the user is still locked out on this terminal (0 when free)."""
    entry = lockouts.get(token)
    return 0.0 if entry is None else max(0.0, entry.locked_until - now)


def record_wrong_pin(
    lockouts: Lockouts, tokens: Sequence[str], now: float, cfg: PaymentConfig
) -> dict[str, PinLockout]:
    """A wrong PIN for these candidates: after `pin_free_attempts` each further wrong PIN
    locks for pin_lock_base_s x 2^(n - free), capped at pin_lock_max_s."""
    updated = dict(lockouts)
    for token in tokens:
        failures = updated.get(token, PinLockout()).failures + 1
        over = failures - cfg.pin_free_attempts
        delay = 0.0 if over < 0 else min(cfg.pin_lock_max_s, cfg.pin_lock_base_s * 2.0**over)
        updated[token] = PinLockout(failures, now + delay if delay else 0.0)
    return updated


def record_pin_ok(lockouts: Lockouts, token: str) -> dict[str, PinLockout]:
    """A correct PIN clears the user's count."""
    return {t: entry for t, entry in lockouts.items() if t != token}
