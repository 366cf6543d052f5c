"""Reason codes: every payment decision and every ended session carries one or more.

The values are stable strings: they go into the ledger, the `events` topic and the
authorization response, and docs/payment.md explains each one.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Approvals
    APPROVED_ONLINE = "approved_online"
    APPROVED_OFFLINE = "approved_offline"
    # Why a PIN was asked (informational, recorded with the transaction)
    PIN_OVER_LIMIT = "pin_over_limit"
    PIN_AMBIGUOUS_MATCH = "pin_ambiguous_match"
    PIN_NO_RING = "pin_no_ring"  # no challenge light: the face alone does not pay here
    # Face, liveness and session ends
    UNKNOWN_FACE = "unknown_face"
    LIVENESS_FAILED = "liveness_failed"
    REPLAY_SUSPECTED = "replay_suspected"  # the passive cue called the track a spoof
    CHALLENGE_FAILED = "challenge_failed"  # the face's light did not follow the code
    CHALLENGE_UNAVAILABLE = "challenge_unavailable"  # the challenge could not be judged
    FACE_LOST = "face_lost"
    SECOND_FACE = "second_face"
    FACE_SWAPPED = "face_swapped"
    CANCELLED = "cancelled"
    INTENT_TIMEOUT = "intent_timeout"
    MATCH_TIMEOUT = "match_timeout"
    PIN_TIMEOUT = "pin_timeout"
    AMOUNT_MISSING = "amount_missing"
    AMOUNT_CHANGED = "amount_changed"
    AMOUNT_INVALID = "amount_invalid"
    SELECT_TIMEOUT = "select_timeout"
    # Account and limits (device rules)
    ACCOUNT_UNKNOWN = "account_unknown"
    ACCOUNT_SUSPENDED = "account_suspended"
    ACCOUNT_REVOKED = "account_revoked"
    OVER_TX_CAP = "over_tx_cap"
    OVER_DAILY_CAP = "over_daily_cap"
    VELOCITY = "velocity"
    PIN_LOCKED = "pin_locked"
    # Host answers
    WRONG_PIN = "wrong_pin"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    HOST_DECLINED = "host_declined"
    # Offline fallback
    AUTH_TIMEOUT = "auth_timeout"
    AUTH_UNAVAILABLE = "auth_unavailable"
    OFFLINE_OVER_FLOOR = "offline_over_floor"
    OFFLINE_ALLOWANCE = "offline_allowance"
    OFFLINE_PIN_REQUIRED = "offline_pin_required"
    # After approval
    PASSAGE_TIMEOUT = "passage_timeout"
    VEND_FAILED = "vend_failed"
    VEND_TIMEOUT = "vend_timeout"


def host_reason(code: str) -> Reason:
    """A host's reason string as a Reason; anything unknown is a plain host decline."""
    try:
        return Reason(code)
    except ValueError:
        return Reason.HOST_DECLINED
