"""What the demo says about what the terminal's effects did: one line per observed
effect (the session's state, LEDs, display, relay, vend, ledger, authorization, notices,
the challenge light's verdict), or None for what goes unsaid."""

from __future__ import annotations

from typing import Any

__all__ = ["narration"]


def narration(what: str, d: dict[str, Any]) -> str | None:
    match what:
        case "state":
            reasons = f" ({', '.join(d['reasons'])})" if d.get("reasons") else ""
            return f"session -> {d['state']}{reasons}"
        case "leds":
            return f"LEDs: {d['pattern']}"
        case "prompt":
            return f'display: "{d["text"]}"' if d.get("text") else None
        case "relay":
            return f"relay: pulse {d['ms']} ms (gate opens)"
        case "vend":
            return f"VEND APPROVED to the machine ({d['amount']} cents)"
        case "vend_session":
            return f"BEGIN SESSION to the machine: up to {d['funds']} cents online"
        case "ledger":
            extra = " offline" if d.get("offline") else ""
            return f"ledger: {d['tx_id'][:13]}... {d['status']}{extra}"
        case "authorize":
            return f"authorization request: {d['amount']} cents"
        case "notify":
            return _NOTICES.get(d["kind"])
        case "challenge":
            figures = (
                f", contrast on-off {d['contrast']:+.3f}, margin {d['margin']:+.3f}, "
                f"lag {d['lag_frames']} frame(s)"
                if d["contrast"] is not None
                else ""
            )
            seen = f"{d['frames']} frames at {d['fps']} fps"
            if d.get("bits") and d.get("seconds") is not None:
                seen += f", {d['bits']} bits judged {d['seconds']:.2f} s after the code began"
            return f"challenge light: {d['reason']}{figures}, {seen}"
        case "error":
            return f"ERROR in {d['effect']}: {d['error']}"
        case _:
            return None


_NOTICES = {
    "passage": "gate: the customer walked through",
    "vended": "vending machine: VEND SUCCESS, product delivered",
    "voided": "payment voided",
    "unknown_face": "match: nobody enrolled looks like this face",
    "liveness_rejected": "liveness: refused",
    "auth_fallback": "host unreachable: offline rules decide",
}
