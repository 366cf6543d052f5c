"""The demo's vending scenes: a vending machine on MDB (the VMC simulator on a pty, the
terminal's real mdb-uart controller) sells to customers who pay with face and blink.

The machine is scripted per customer (what they select, whether the product comes out);
the terminal knows nothing of the script: it opens the machine's session when a known
face blinks, pays the price the machine asks, and settles or voids by what the machine
reports. The outcome is read back from the ledger, the host's balance and the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from device.demo.rig import DemoRig, Narrate
from device.demo.scenes import COLLINS, DEMO_PIN, PIN_AMOUNT, Director, Person, SceneResult
from device.vending.vmc_machine import Customer

SALE_ITEM, SALE_PRICE = 12, 150


def vending_scenes(d: Director, rig: DemoRig, narrate: Narrate) -> list[SceneResult]:
    online = rig.online
    how = "online" if online else "offline"
    results: list[SceneResult] = []

    def visit(person: Person, item: int, price: int, act: str, keys: str = "") -> Customer:
        """The customer looks, blinks, then selects at the machine (and types `keys` if the
        terminal asks for the PIN); the machine does `act` with the product."""
        rig.use("vending")
        customer = rig.customer_at_machine(item, price, act)
        d.look_and_blink(person)
        session = rig.terminal.session
        rig.wait_real(lambda: customer.done.is_set() or session.state.value == "pin")
        if session.state.value == "pin" and keys:
            rig.press(keys)
        rig.wait_real(customer.done.is_set)
        rig.wait(0.3)
        return customer

    def machine_note(customer: Customer) -> list[str]:
        if customer.denied and customer.funds is not None and customer.price > customer.funds:
            return [f"denied at the machine (over the {customer.funds} offered)"]
        return []

    def sale() -> list[str]:
        return machine_note(visit(rig_person(d, COLLINS), SALE_ITEM, SALE_PRICE, "vend"))

    results.append(
        d.scene(
            f"At a vending machine (MDB): face, blink, item {SALE_ITEM} for "
            f"{SALE_PRICE / 100:.2f} EUR",
            f"approved {how}, vended",
            sale,
        )
    )

    def jam() -> list[str]:
        rig.wait_real(lambda: _money_left(rig) >= 0)  # the earlier rows are synced
        before = _money_left(rig)
        visit(rig_person(d, COLLINS), SALE_ITEM + 1, SALE_PRICE, "jam")
        rig.wait_real(lambda: _money_left(rig) == before)
        return ["refunded" if _money_left(rig) == before else "NOT refunded"]

    results.append(
        d.scene(
            "The item jams in the machine: the customer is refunded",
            "voided (vend_failed), refunded",
            jam,
        )
    )
    results += _pin_scenes(d, rig, visit, machine_note)
    return results


def _pin_scenes(
    d: Director,
    rig: DemoRig,
    visit: Callable[..., Customer],
    machine_note: Callable[[Customer], list[str]],
) -> list[SceneResult]:
    """Above the PIN limit: online the PIN is asked; offline the machine session only
    offers the offline funds, so the machine itself refuses the selection."""
    offline_note = "" if rig.online else ", denied at the machine (over the 500 offered)"
    hopper = d.hopper

    def with_pin() -> list[str]:
        return machine_note(visit(hopper, 15, PIN_AMOUNT, "vend", keys=DEMO_PIN + "#"))

    def cancel() -> list[str]:
        return machine_note(visit(hopper, 15, PIN_AMOUNT, "vend", keys="*"))

    paid = "approved online with PIN, vended" if rig.online else "cancelled, no payment"
    return [
        d.scene(
            f"A vending purchase of {PIN_AMOUNT / 100:.2f} EUR, above the PIN limit",
            paid + offline_note,
            with_pin,
        ),
        d.scene(
            "The customer presses cancel at the PIN prompt",
            "cancelled, no payment" + offline_note,
            cancel,
        ),
    ]


def rig_person(d: Director, token: str) -> Person:
    return d.collins if token == COLLINS else d.hopper


def _money_left(rig: DemoRig) -> int:
    """What Collins can still spend: the host's balance online (once the terminal's rows
    are synced), the offline allowance left on the terminal offline."""
    assert rig.parts is not None
    ledger = rig.parts.store.ledger
    if not rig.online:
        day = datetime.fromtimestamp(rig.clock.time(), UTC).strftime("%Y-%m-%d")
        return ledger.offline_remaining(COLLINS, day)
    if ledger.pending_sync():
        return -1
    return int(rig.host.accounts.balance(COLLINS))
