"""Payment rules: amounts, accounts, caps, velocity, PIN triggers, offline fallback and the
wrong-PIN lockout with growing delays. Every outcome carries its reason code."""

from __future__ import annotations

import pytest

from device.core import policy
from device.core.config import PaymentConfig
from device.core.policy import Payer, PinLockout
from device.core.reasons import Reason, host_reason

CFG = PaymentConfig()  # pin_over 2000, max_per_tx 10000, day 30000, floor 500, velocity 5


def check(amount: int | None, kind: str = "match", tokens=("alice",), accounts=None, **kw):
    if accounts is None:
        accounts = {t: Payer(t) for t in tokens}
    return policy.precheck(amount, kind, list(tokens), accounts, kw.get("lockouts", {}), 0.0, CFG)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (None, Reason.AMOUNT_MISSING),
        (0, Reason.AMOUNT_INVALID),
        (-5, Reason.AMOUNT_INVALID),
        (10_001, Reason.OVER_TX_CAP),
    ],
)
def test_amounts_that_cannot_be_paid(amount: int | None, reason: Reason) -> None:
    assert check(amount) == policy.Precheck("decline", (reason,))


def test_small_clear_match_goes_without_pin() -> None:
    assert check(250) == policy.Precheck("go", ())
    assert check(2000).outcome == "go"  # pin_over is "above", not "at"


def test_pin_over_limit_and_ambiguous_ask_the_pin() -> None:
    over = check(2001)
    assert over.pin_required and over.reasons == (Reason.PIN_OVER_LIMIT,)
    both = check(2500, "ambiguous", ("ann", "amy"))
    assert both.reasons == (Reason.PIN_AMBIGUOUS_MATCH, Reason.PIN_OVER_LIMIT)


def test_unknown_face_is_declined() -> None:
    assert check(250, "unknown", ()).reasons == (Reason.UNKNOWN_FACE,)
    assert check(250, "match", ()).reasons == (Reason.UNKNOWN_FACE,)


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        (None, Reason.ACCOUNT_UNKNOWN),
        (Payer("alice", status="revoked"), Reason.ACCOUNT_REVOKED),
        (Payer("alice", status="suspended"), Reason.ACCOUNT_SUSPENDED),
        (Payer("alice", spent_today=29_900), Reason.OVER_DAILY_CAP),
        (Payer("alice", daily_limit=1000, spent_today=900), Reason.OVER_DAILY_CAP),
        (Payer("alice", payments_in_window=5), Reason.VELOCITY),
    ],
)
def test_account_rules_decline_with_their_reason(account: Payer | None, reason: Reason) -> None:
    accounts = {} if account is None else {"alice": account}
    assert check(250, accounts=accounts) == policy.Precheck("decline", (reason,))


def test_account_own_daily_limit_below_terminal_cap_allows_up_to_it() -> None:
    accounts = {"alice": Payer("alice", daily_limit=1000, spent_today=750)}
    assert check(250, accounts=accounts).outcome == "go"


def test_ambiguous_match_keeps_only_payable_candidates() -> None:
    accounts = {"ann": Payer("ann", status="suspended"), "amy": Payer("amy")}
    assert policy.payable_tokens(300, ["ann", "amy"], accounts, {}, 0.0, CFG) == ("amy",)
    assert check(300, "ambiguous", ("ann", "amy"), accounts).pin_required


def test_locked_user_is_declined_as_pin_locked() -> None:
    lockouts = {"alice": PinLockout(3, 100.0)}
    result = policy.precheck(
        250, "match", ["alice"], {"alice": Payer("alice")}, lockouts, 50.0, CFG
    )
    assert result == policy.Precheck("decline", (Reason.PIN_LOCKED,))
    # once the lock has run out the user may pay again
    later = policy.precheck(
        250, "match", ["alice"], {"alice": Payer("alice")}, lockouts, 100.0, CFG
    )
    assert later.outcome == "go"


# ------------------------------------------------------------------ offline


def test_offline_approves_small_pinless_within_allowance() -> None:
    verdict = policy.offline_verdict(300, False, Payer("a", offline_allowance_left=300), CFG)
    assert verdict == policy.Verdict(True, (Reason.AUTH_TIMEOUT, Reason.APPROVED_OFFLINE))


@pytest.mark.parametrize(
    ("amount", "pin", "account", "reason"),
    [
        (300, True, Payer("a", offline_allowance_left=1000), Reason.OFFLINE_PIN_REQUIRED),
        (501, False, Payer("a", offline_allowance_left=1000), Reason.OFFLINE_OVER_FLOOR),
        (300, False, Payer("a", offline_allowance_left=299), Reason.OFFLINE_ALLOWANCE),
        (300, False, None, Reason.OFFLINE_ALLOWANCE),  # ambiguous: no single payer
    ],
)
def test_offline_declines(amount: int, pin: bool, account: Payer | None, reason: Reason) -> None:
    verdict = policy.offline_verdict(amount, pin, account, CFG)
    assert not verdict.approved and verdict.reasons == (Reason.AUTH_TIMEOUT, reason)


# ------------------------------------------------------------------ lockout


def test_lockout_delays_grow_then_cap() -> None:
    cfg = PaymentConfig(pin_free_attempts=2, pin_lock_base_s=30.0, pin_lock_max_s=200.0)
    lockouts: dict[str, PinLockout] = {}
    delays = []
    now = 1000.0
    for _ in range(6):
        lockouts = policy.record_wrong_pin(lockouts, ["bob"], now, cfg)
        delays.append(policy.locked_for(lockouts, "bob", now))
        now += 10_000.0  # wait out every lock
    # two free tries, then 30 s doubling per further wrong PIN, capped at 200 s
    assert delays == [0.0, 30.0, 60.0, 120.0, 200.0, 200.0]
    assert lockouts["bob"].failures == 6


def test_lockout_counts_down_and_a_right_pin_clears_it() -> None:
    lockouts = {"bob": PinLockout(2, 130.0), "eve": PinLockout(1, 0.0)}
    assert policy.locked_for(lockouts, "bob", 100.0) == pytest.approx(30.0)
    assert policy.locked_for(lockouts, "bob", 131.0) == 0.0
    assert policy.locked_for(lockouts, "nobody", 0.0) == 0.0
    cleared = policy.record_pin_ok(lockouts, "bob")
    assert cleared == {"eve": PinLockout(1, 0.0)}


def test_wrong_pin_on_ambiguous_match_counts_for_every_candidate() -> None:
    lockouts = policy.record_wrong_pin({}, ["ann", "amy"], 0.0, CFG)
    assert set(lockouts) == {"ann", "amy"}


def test_host_reason_strings() -> None:
    assert host_reason("wrong_pin") is Reason.WRONG_PIN
    assert host_reason("made_up") is Reason.HOST_DECLINED
