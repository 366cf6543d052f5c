"""The words a fleet manager reads for the terminal's codes: one catalogue of short phrases
for the reason codes (device/core/reasons.py `Reason`, explained in docs/payment.md), the
event types and outcomes a terminal publishes on its `events` topic, the ledger row's
status and the host's result, what an alert's delivery told, and the actions of the audit
log. Each phrase is an `N_` message (translated where it is shown, in the page's language);
the code itself stays beside it on the page, so a field engineer can grep the logs for it.
A code without a phrase (a newer terminal's) is shown as it is.

The pages show them through the `label` and `labels` template filters (backend/console/web.py;
`words` inside a sentence: the words alone) and, for what a script re-renders (the device
page's events, the fleet's last transaction), through `shown`: {code, label} in the
request's language."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.console.i18n import N_, Translate
from device.core.reasons import Reason

# Every Reason has one (tests/console/test_labels.py); `remote` is the reason a gate test
# carries (device/remote/commands.py), not a payment's.
REASONS: dict[str, str] = {
    Reason.APPROVED_ONLINE: N_("Approved by the host"),
    Reason.APPROVED_OFFLINE: N_("Approved offline (host not reached)"),
    Reason.PIN_OVER_LIMIT: N_("PIN asked: amount over the PIN limit"),
    Reason.PIN_AMBIGUOUS_MATCH: N_("PIN asked: several enrolled faces look alike"),
    Reason.PIN_NO_RING: N_("PIN asked: this terminal has no challenge light"),
    Reason.UNKNOWN_FACE: N_("Face not recognised"),
    Reason.LIVENESS_FAILED: N_("Liveness check failed"),
    Reason.REPLAY_SUSPECTED: N_("Suspected photo or screen replay"),
    Reason.CHALLENGE_FAILED: N_("Light challenge failed (possible replay)"),
    Reason.CHALLENGE_UNAVAILABLE: N_("Light challenge could not be judged"),
    Reason.FACE_LOST: N_("Face left the camera's view"),
    Reason.SECOND_FACE: N_("Another face came into view"),
    Reason.FACE_SWAPPED: N_("The matched face was not the one that blinked"),
    Reason.CANCELLED: N_("Cancelled by the customer"),
    Reason.INTENT_TIMEOUT: N_("No blink in time"),
    Reason.MATCH_TIMEOUT: N_("Face not read in time"),
    Reason.PIN_TIMEOUT: N_("PIN not entered in time"),
    Reason.AMOUNT_MISSING: N_("The vending machine gave no amount"),
    Reason.AMOUNT_CHANGED: N_("The amount changed during the payment"),
    Reason.AMOUNT_INVALID: N_("Invalid amount (zero or negative)"),
    Reason.SELECT_TIMEOUT: N_("No product chosen in time"),
    Reason.ACCOUNT_UNKNOWN: N_("No account for the matched face"),
    Reason.ACCOUNT_SUSPENDED: N_("Account suspended"),
    Reason.ACCOUNT_REVOKED: N_("Account revoked"),
    Reason.OVER_TX_CAP: N_("Over the per-payment limit"),
    Reason.OVER_DAILY_CAP: N_("Over the daily limit"),
    Reason.VELOCITY: N_("Too many payments in a short time"),
    Reason.PIN_LOCKED: N_("PIN locked after wrong PINs"),
    Reason.WRONG_PIN: N_("Wrong PIN"),
    Reason.INSUFFICIENT_FUNDS: N_("Insufficient funds"),
    Reason.HOST_DECLINED: N_("Declined by the host"),
    Reason.AUTH_TIMEOUT: N_("The host did not answer in time"),
    Reason.AUTH_UNAVAILABLE: N_("No link to the host"),
    Reason.OFFLINE_OVER_FLOOR: N_("Offline: amount over the offline limit"),
    Reason.OFFLINE_ALLOWANCE: N_("Offline: the offline allowance does not cover it"),
    Reason.OFFLINE_PIN_REQUIRED: N_("Offline: a PIN payment needs the host"),
    Reason.PASSAGE_TIMEOUT: N_("Nobody passed the gate: ride voided"),
    Reason.VEND_FAILED: N_("The machine could not vend: payment voided"),
    Reason.VEND_TIMEOUT: N_("No vend result in time: payment voided"),
    "remote": N_("Sent from the console"),
}

# The `type` of an event: what the session core notifies (device/core/session_*.py,
# Notify(kind, ...)) and what the shell and remote commands publish (device/shell/host.py,
# device/remote/commands.py); tests/console/test_labels.py finds every one in the source.
EVENTS: dict[str, str] = {
    "session_aborted": N_("Attempt ended before payment"),
    "liveness_rejected": N_("Liveness refusal"),
    "face_swapped": N_("Face swap refused"),
    "unknown_face": N_("Unknown face"),
    "auth_response_ignored": N_("Late host answer ignored"),
    "auth_fallback": N_("Decided offline (host not reached)"),
    "voided": N_("Payment voided"),
    "void": N_("Void reported to the host"),
    "passage": N_("Customer passed the gate"),
    "vended": N_("Product vended"),
    "gate_test": N_("Gate test"),
}

# An event's `outcome` (device/shell/host.py: voided; device/remote/commands.py: pulsed,
# refused).
OUTCOMES: dict[str, str] = {
    "voided": N_("Voided (refunded)"),
    "pulsed": N_("Gate relay pulsed"),
    "refused": N_("Refused"),
}

# A ledger row's status (docs/asyncapi.yaml TxRecord.status) and the host's result for it
# (backend/accounts.py record_tx).
STATUSES: dict[str, str] = {
    "pending": N_("Pending"),
    "approved": N_("Approved"),
    "declined": N_("Declined"),
    "voided": N_("Voided (refunded)"),
}
RESULTS: dict[str, str] = {
    "recorded": N_("Recorded"),
    "duplicate": N_("Duplicate (already recorded)"),
    "rejected": N_("Refused by the host"),
}

# What an alert's delivery (webhook, mail) told (backend/console/alerts.py).
ALERT_EVENTS: dict[str, str] = {"raised": N_("alert raised"), "cleared": N_("alert cleared")}

# The `action` of an audit log row: what the console's pages and the host's command line
# record (`audit(...)`, `ConsoleStore.audit(...)`; tests/console/test_labels.py finds every
# one in the source).
AUDIT_ACTIONS: dict[str, str] = {
    "login": N_("Logged in"),
    "login_refused": N_("Login refused"),
    "logout": N_("Logged out"),
    "enrol": N_("Customer enrolled"),
    "suspend": N_("Account suspended"),
    "revoke": N_("Account revoked"),
    "reactivate": N_("Account reactivated"),
    "delete": N_("Customer erased"),
    "export": N_("Customer's data exported"),
    "export_csv": N_("List exported (CSV)"),
    "config": N_("Config change sent to a terminal"),
    "command": N_("Command sent to a terminal"),
    "operator_add": N_("Operator added"),
    "operator_role": N_("Operator's role changed"),
    "operator_disable": N_("Operator disabled"),
    "operator_enable": N_("Operator enabled"),
    "operator_password": N_("Operator's password reset"),
    "operator_reset_password": N_("Operator's password reset"),
    "operator_logout": N_("Operator's sessions ended"),
    "shard_migrate": N_("Embedder migration started"),
    "shard_cancel": N_("Embedder migration cancelled"),
    "shard_switch": N_("Shard switched to the new embedder"),
    "account.pin_unlock": N_("PIN unlocked"),
}

# Why a terminal refused an inbound message (telemetry's `rejected` counts, this boot): the
# PayloadRejected reasons and rejects.add(...) of device/net (tests/console/test_labels.py
# finds every one in the source).
REFUSALS: dict[str, str] = {
    "bad_signature": N_("Bad signature (forged or altered)"),
    "bad_timestamp": N_("Command without a valid time"),
    "stale": N_("Command too old"),
    "replay": N_("Replayed (already applied)"),
    "repeat": N_("Command sent again (answered, not run twice)"),
    "wrong_target": N_("Meant for another terminal"),
    "wrong_shard": N_("For another shard"),
    "wrong_kind": N_("Wrong kind of signed message"),
    "wrong_request": N_("Answer to another request"),
    "foreign_ack": N_("Acknowledgement of a payment not waiting for one (a second ack)"),
    "malformed": N_("Unreadable message"),
    "schema": N_("Message outside the contract"),
    "oversize": N_("Message too large"),
    "unrouted": N_("Message on an unexpected topic"),
    "handler_error": N_("Message the terminal failed to handle"),
    "queue_full": N_("Terminal too busy to take a command"),
    "bad_hash": N_("Shard snapshot damaged in transit"),
    "gap": N_("Shard update missed (full copy requested)"),
    "store_refused": N_("Shard update refused by the store"),
    "unrequested_snapshot": N_("Shard copy this terminal did not ask for"),
    "not_sealed": N_("Face templates not encrypted"),
    "no_device_key": N_("No key to open face templates"),
    "not_a_recipient": N_("Face templates encrypted for other terminals"),
    "bad_seal": N_("Face templates damaged or forged"),
}

KINDS: dict[str, dict[str, str]] = {
    "reason": REASONS,
    "event": EVENTS,
    "outcome": OUTCOMES,
    "status": STATUSES,
    "result": RESULTS,
    "alert": ALERT_EVENTS,
    "audit": AUDIT_ACTIONS,
    "refusal": REFUSALS,
}


def label(kind: str, code: object, _: Translate) -> str | None:
    """The phrase for `code` (a `kind` of KINDS) in the language of `_`, or None when the
    code has none (a newer terminal's code: the page shows the code itself)."""
    message = KINDS[kind].get(str(code))
    return _(message) if message is not None else None


def shown(kind: str, code: object, _: Translate) -> dict[str, Any]:
    """{code, label} for a script: the label is the code itself when it has no phrase."""
    text = "" if code is None else str(code)
    return {"code": text, "label": label(kind, text, _) or text}


def shown_all(kind: str, codes: Iterable[object] | None, _: Translate) -> list[dict[str, Any]]:
    return [shown(kind, code, _) for code in codes or ()]


def event_shown(event: dict[str, Any], _: Translate) -> dict[str, Any]:
    """An event's type, outcome and reasons as {code, label}, for the device page's script
    (which re-renders the events table on every update)."""
    reasons = event.get("reasons")
    outcome = event.get("outcome")
    return {
        "type": shown("event", event.get("type"), _),
        "outcome": shown("outcome", outcome, _) if outcome else None,
        "reasons": shown_all("reason", reasons if isinstance(reasons, list) else (), _),
    }
