"""Issue 19's attacks from the site network, each against `blinkpay-host serve`, mosquitto and
terminals' real network sides: every one fails (docs/security.md)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import uuid6
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.console.fleet import Fleet
from device.core.events import AuthCandidate
from device.crypto.signing import public_key_pem, sign_document
from device.net import schemas
from device.net.client import MqttLink
from device.net.config import MqttConfig
from device.net.schemas import PayloadRejected
from device.net.topics import DeviceTopics
from tests.conftest import Broker
from tests.net.conftest import SHARD, Terminal, unit_vector
from tests.security.conftest import PREFIX, Attacker, Site, wait_until

pytestmark = pytest.mark.mqtt


def topics(device_id: str) -> DeviceTopics:
    return DeviceTopics(PREFIX, device_id)


def row(tx_id: str, token: str, amount: int, status: str, authorization: str) -> dict[str, Any]:
    return {
        "id": tx_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "amount": amount,
        "currency": "EUR",
        "token": token,
        "mode": "turnstile",
        "status": status,
        "authorization": authorization,
        "reasons": ["test"],
    }


def auth_request(device_id: str, tx_id: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "v": 1,
        "request_id": uuid.uuid4().hex,
        "device_id": device_id,
        "tx_id": tx_id,
        "amount": 250,
        "currency": "EUR",
        "ts": time.time(),
        "candidates": candidates,
    }


def signed(payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return {**payload, "signature": sign_document(payload, key)}


def authorize(terminal: Terminal, token: str, pin_block: str | None = None) -> Any:
    block = None if pin_block is None else bytes.fromhex(pin_block)
    return terminal.net.authorize(
        tx_id=str(uuid6.uuid7()),
        amount=250,
        currency="EUR",
        candidates=[AuthCandidate(token, block)],
        timeout_s=15.0,
    )


def enrol(site: Site, token: str, *, shard_id: str = SHARD, pin: str | None = None) -> None:
    site.operator.enrol(token, unit_vector(len(token)), shard_id=shard_id, balance=1000, pin=pin)


def test_a_forged_row_with_the_genuine_id_never_blocks_or_replaces_the_genuine_one(
    site: Site, attacker: Attacker
) -> None:
    """The free ride: a row with a real authorization's id, unsigned on another device's
    topic, or signed by a second registered terminal, is refused (no ack, no row); the
    genuine row is then charged; a host-signed ack replayed to the terminal for a row it
    did not send is refused by its outbox."""
    enrol(site, "tok-alice")
    gate_a, gate_b = site.terminal("gate-a"), site.terminal("gate-b")
    attacker.listen(f"{PREFIX}/dev/+/tx/ack")
    tx_id = str(uuid6.uuid7())
    reply = gate_a.net.authorize(
        tx_id=tx_id, amount=250, currency="EUR", candidates=[AuthCandidate("tok-alice")]
    )
    assert reply is not None and reply.approved
    forged = row(tx_id, "tok-alice", 250, "declined", "online")
    for device_id in ("gate-x", "gate-b"):  # unregistered, and registered but not the signer
        attacker.publish(
            topics(device_id).tx,
            {
                "v": 1,
                "device_id": device_id,
                "status": "declined",
                "tx": forged,
                "signature": "AAAA",
            },
        )
    gate_b.pay("tok-alice", 250, "declined", tx_id=tx_id)  # signed by gate-b's own key
    assert wait_until(lambda: bool(attacker.messages("gate-b/tx/ack")))
    ((_, refusal),) = attacker.messages("gate-b/tx/ack")
    assert (refusal["result"], refusal["reason"]) == ("rejected", "foreign_tx")
    # that host-signed refusal, replayed to gate-a, names a row gate-a never sent
    gate_a.pay("tok-alice", 250, "approved", tx_id=tx_id)
    attacker.publish(topics("gate-a").tx_ack, refusal)
    assert wait_until(lambda: gate_a.store.ledger.depth() == 0)
    assert wait_until(lambda: gate_a.net.ledger_sync.foreign_acks >= 1)
    assert [(r["tx_id"], r["device_id"], r["status"]) for r in site.rows()] == [
        (tx_id, "gate-a", "approved")
    ]
    assert site.balance("tok-alice") == 750  # charged once: no free ride
    assert not attacker.messages("gate-x/tx/ack")  # the unsigned forger got nothing
    refused = site.query("SELECT device_id, reason FROM refused_rows WHERE tx_id = ?", tx_id)
    assert refused == [("gate-b", "foreign_tx")]


def test_a_second_terminal_cannot_charge_anyone_or_refund_another_terminals_sale(
    site: Site,
) -> None:
    enrol(site, "tok-alice")
    enrol(site, "tok-carol", shard_id="station-b")
    gate_a, rogue = site.terminal("gate-a"), site.terminal("gate-rogue")
    sale = str(uuid6.uuid7())
    reply = gate_a.net.authorize(
        tx_id=sale, amount=250, currency="EUR", candidates=[AuthCandidate("tok-alice")]
    )
    assert reply is not None and reply.approved
    gate_a.pay("tok-alice", 250, "approved", tx_id=sale)
    assert wait_until(lambda: gate_a.store.ledger.depth() == 0)
    attempts = {
        rogue.pay("tok-alice", 45_000): "offline_over_floor",  # no authorization, any amount
        rogue.pay("tok-carol", 100): "not_this_shard",  # a customer of another shard
    }
    void = row(sale, "tok-alice", 250, "voided", "online")  # refund gate-a's sale
    message = {"v": 1, "device_id": "gate-rogue", "status": "voided", "tx": void}
    rogue.net.link.publish(
        rogue.net.topics.tx, {**message, "signature": sign_document(void, rogue.signing_key)}
    )
    attempts[sale] = "foreign_tx"
    assert wait_until(lambda: rogue.store.ledger.depth() == 0)
    assert wait_until(
        lambda: dict(site.query("SELECT tx_id, reason FROM refused_rows")) == attempts
    )
    within = [rogue.pay("tok-alice", 300) for _ in range(4)]  # allowance 1000 a day
    assert wait_until(lambda: rogue.store.ledger.depth() == 0)
    refused = dict(site.query("SELECT tx_id, reason FROM refused_rows"))
    # The host's handler pool settles rows side by side, so which of the four comes last
    # is the pool's choice: exactly one of them goes past the allowance.
    assert [refused.get(tx_id) for tx_id in within].count("offline_allowance") == 1
    assert sum(tx_id in refused for tx_id in within) == 1
    assert site.balance("tok-alice") == 1000 - 250 - 3 * 300
    assert site.balance("tok-carol") == 1000


def test_unsigned_or_foreign_auth_requests_get_no_hold_no_oracle_and_no_answer(
    site: Site, attacker: Attacker
) -> None:
    enrol(site, "tok-alice")
    gate_a = site.terminal("gate-a")
    attacker.listen("#")
    mine = Ed25519PrivateKey.generate()
    evil = "evil/answers"
    for token in ("tok-alice", "tok-nobody"):
        request = auth_request("gate-ghost", str(uuid6.uuid7()), [{"token": token}])
        attacker.publish(topics("gate-ghost").auth_req, request, response_topic=evil)
        attacker.publish(topics("gate-ghost").auth_req, signed(request, mine), response_topic=evil)
        as_a = auth_request("gate-a", str(uuid6.uuid7()), [{"token": token}])
        attacker.publish(topics("gate-a").auth_req, signed(as_a, mine), response_topic=evil)
    # gate-a's own signed request naming a response topic: answered on gate-a's topic only.
    # On the same connection after the forgeries, so its answer means they were handled.
    own = auth_request("gate-a", str(uuid6.uuid7()), [{"token": "tok-alice"}])
    attacker.publish(
        topics("gate-a").auth_req, signed(own, gate_a.signing_key), response_topic=evil
    )
    assert wait_until(lambda: bool(attacker.messages("gate-a/auth/resp")))
    answers = [p for _, p in attacker.messages("gate-a/auth/resp")]
    assert [(p["tx_id"], p["decision"]) for p in answers] == [(own["tx_id"], "approved")]
    ghost = [t for t, _ in attacker.seen if t.startswith("evil") or t.endswith("ghost/auth/resp")]
    assert not ghost
    held = site.query("SELECT device_id, tx_id FROM authorizations")
    assert held == [("gate-a", own["tx_id"])]
    assert site.balance("tok-alice") == 1000 - 250  # the one real hold, nothing else


def test_pin_guesses_across_terminals_lock_the_customer_until_an_operator_unlocks(
    site: Site,
) -> None:
    enrol(site, "tok-pin", pin="4821")
    gate_a, gate_b = site.terminal("gate-a"), site.terminal("gate-b")
    guesses = [(gate_a, "0000"), (gate_b, "1111"), (gate_a, "2222")]  # pin_max_tries = 3
    for terminal, guess in guesses:
        reply = authorize(terminal, "tok-pin", site.pin_block("tok-pin", guess))
        assert reply is not None and reply.reason == "wrong_pin"
    reply = authorize(gate_b, "tok-pin", site.pin_block("tok-pin", "4821"))
    assert reply is not None and (reply.approved, reply.reason) == (False, "pin_locked")
    unlocked = site.host_cli("account", "unlock", "tok-pin", "--operator", "alice")
    assert unlocked.returncode == 0, unlocked.stderr
    audit = site.query("SELECT operator, action, target FROM audit")
    assert ("alice", "account.pin_unlock", "tok-pin") in audit
    reply = authorize(gate_b, "tok-pin", site.pin_block("tok-pin", "4821"))
    assert reply is not None and reply.approved


def test_a_pin_block_flood_from_one_terminal_leaves_the_others_answered(site: Site) -> None:
    """20 requests of 8 PIN blocks (160 scrypts) from one terminal: it is rate limited and
    its work is queued behind everyone else's; the other terminal is answered meanwhile."""
    enrol(site, "tok-alice")
    for n in range(8):
        enrol(site, f"tok-flood-{n}", pin="1234")
    gate_a, flooder = site.terminal("gate-a"), site.terminal("gate-flood")
    flooder.net.link.subscribe(flooder.net.topics.auth_resp, "AuthResponse", lambda m: None)
    candidates = [
        {"token": f"tok-flood-{n}", "pin_block": site.pin_block(f"tok-flood-{n}", "9999")}
        for n in range(8)
    ]
    for _ in range(20):
        request = auth_request("gate-flood", str(uuid6.uuid7()), candidates)
        flooder.net.link.publish_signed(flooder.net.topics.auth_req, request, qos=1)
    started = time.monotonic()
    reply = authorize(gate_a, "tok-alice")
    took = time.monotonic() - started
    print(f"gate-a answered in {took:.2f} s during a flood of 20 x 8 PIN blocks")
    assert reply is not None and reply.approved  # answered within its auth timeout
    tried = site.query("SELECT COUNT(*) FROM authorizations WHERE device_id = 'gate-flood'")
    assert tried[0][0] <= 4  # the rest were refused `rate_limited` before any scrypt


def test_device_ids_that_are_not_ids_are_refused_where_they_enter(
    site: Site, attacker: Attacker
) -> None:
    attacker.listen(f"{PREFIX}/dev/+/register/resp")
    key = Ed25519PrivateKey.generate()
    for bad in ("gate/x", "+", "#", "g" * 80):
        request = {
            "v": 1,
            "request_id": uuid.uuid4().hex,
            "device_id": bad,
            "public_key": public_key_pem(key),
            "box_public_key": public_key_pem(key),
            "token": "t" * 43,
            "ts": time.time(),
        }
        with pytest.raises(PayloadRejected):
            schemas.check("RegisterRequest", signed(request, key))
        if "/" not in bad and bad not in "+#":  # a topic cannot even carry the others
            attacker.publish(topics(bad).register_req, signed(request, key))
    site.terminal("gate-a")  # the host is still up and answering
    assert not attacker.messages()
    assert site.query("SELECT device_id FROM devices WHERE device_id NOT LIKE 'gate-a'") == [
        ("probe-0",)
    ]


def test_a_retained_status_from_the_far_future_is_refused_by_its_readers(
    broker: Broker, attacker: Attacker
) -> None:
    """`"ts": 1e12`, retained: the console's fleet (and every reader of the contract)
    refuses it by the schema, counts it, and goes on; a sane status is taken."""
    status = {"v": 1, "device_id": "gate-a", "state": "online", "boot_id": "0" * 32, "seq": 1}
    attacker.publish(topics("gate-a").status, {**status, "ts": 1e12}, retain=True)
    attacker.publish(topics("gate-b").status, {**status, "device_id": "gate-b"}, retain=True)
    link = MqttLink(MqttConfig(url=broker.url), "console-test")
    fleet = Fleet(PREFIX, lambda shard_id: None)
    fleet.attach(link)
    link.start()
    try:
        assert link.wait_connected(10)
        assert wait_until(lambda: fleet.device_ids() == ["gate-b"] and link.rejects["schema"] == 1)
        assert [row["device_id"] for row in fleet.rows()] == ["gate-b"]
    finally:
        link.stop()
    with pytest.raises(PayloadRejected):
        schemas.parse("DeviceStatus", schemas.dumps({**status, "ts": 1e12}), 1 << 16)


def test_forged_shard_acks_config_states_and_shard_requests_change_nothing(
    site: Site, attacker: Attacker
) -> None:
    """What the console records from terminals (an erasure reached a terminal, a config was
    applied) and what the host does for them: only on the terminal's own signed word."""
    gate_a = site.terminal("gate-a")
    assert wait_until(lambda: gate_a.net.shard_sync.version is not None)
    recorded: list[tuple[str, Any]] = []
    console_link = MqttLink(site.operator.config.mqtt, "console-test")
    fleet = Fleet(
        PREFIX,
        lambda shard_id: None,
        lambda device_id, shard_id, version: recorded.append(("ack", (device_id, version))),
        lambda state: recorded.append(("config", state["version"])),
        site.operator.inbound.gate,
    )
    fleet.attach(console_link)
    console_link.start()
    assert console_link.wait_connected(10)
    try:
        mine = Ed25519PrivateKey.generate()
        ack = {"v": 1, "device_id": "gate-a", "shard_id": SHARD, "version": 999, "size": 0}
        state = {"v": 1, "device_id": "gate-a", "version": 99, "status": "applied"}
        for payload, topic in (
            (ack, topics("gate-a").shard_ack),
            (state, topics("gate-a").config_state),
        ):
            attacker.publish(topic, signed(payload, mine))  # not gate-a's key
            attacker.publish(topic.replace("gate-a", "gate-x"), signed(payload, mine))
            attacker.publish(topic, payload)  # unsigned
        for shard in ("made-up", "station-z"):  # shard/req may not create a shard
            request = {"v": 1, "device_id": "gate-a", "shard_id": shard, "reason": "boot"}
            attacker.publish(topics("gate-a").shard_req, signed(request, mine))
            attacker.publish(topics("gate-a").shard_req, signed(request, gate_a.signing_key))
        real = {**ack, "version": gate_a.net.shard_sync.version}
        attacker.publish(topics("gate-a").shard_ack, signed(real, gate_a.signing_key))
        expected = ("ack", ("gate-a", real["version"]))
        assert wait_until(lambda: expected in recorded)
        versions = site.query("SELECT shard_version FROM devices WHERE device_id = 'gate-a'")
        assert wait_until(lambda: versions == [(real["version"],)] or versions != [(999,)])
    finally:
        console_link.stop()
    assert [r for r in recorded if r != expected] == []
    assert site.query("SELECT shard_version FROM devices WHERE device_id = 'gate-x'") == []
    assert site.query("SELECT shard_id FROM shards ORDER BY shard_id") == [(SHARD,)]
    assert site.query("SELECT shard_version FROM devices WHERE device_id = 'gate-a'") != [(999,)]


def test_an_erased_template_is_in_neither_the_database_nor_its_wal(site: Site) -> None:
    vector = unit_vector(4242)
    site.operator.enrol("tok-gone", vector, shard_id=SHARD, balance=10)
    needle = vector.astype("<f4").tobytes()
    db_path = site.operator.config.db_path

    def stored() -> bytes:
        return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))

    assert needle in stored()
    erased = site.host_cli("account", "set", "tok-gone", "delete")
    assert erased.returncode == 0, erased.stderr
    assert needle not in stored()


def test_an_old_snapshot_replayed_to_a_never_synced_terminal_is_refused(
    site: Site, attacker: Attacker
) -> None:
    """The host is down; the attacker replays snapshots it recorded before a customer was
    erased (one the operator pushed, one answering another terminal) to a new terminal
    whose keys were registered when they were made: it takes neither."""
    enrol(site, "tok-keep")
    enrol(site, "tok-erased")
    # registered: a recipient of what follows; a push counts as fresh for 1 s
    fresh = site.terminal("gate-new", start=False, command_max_age_s=1.0)
    probe = site.terminals[0]
    attacker.listen(f"{PREFIX}/shard/{SHARD}/snapshot")
    site.operator.publish_snapshot(SHARD)  # pushed by the operator: no request nonce
    probe.net.shard_sync.request_snapshot("resync")  # answered with probe-0's nonce
    assert wait_until(lambda: any("nonce" in p["body"] for _, p in attacker.messages()))
    recorded = list(attacker.messages())
    erased = site.host_cli("account", "set", "tok-erased", "delete")
    assert erased.returncode == 0, erased.stderr
    site.serve.terminate()  # the host goes down
    site.serve.wait(30)
    issued = max(p["body"]["issued_at"] for _, p in recorded)
    time.sleep(max(0.0, issued + 1.5 - time.time()))  # the recordings are older than 1 s
    fresh.net.start()
    assert fresh.net.link.wait_connected(10)
    for topic, payload in recorded:
        attacker.publish(topic, payload)
    rejects = fresh.net.link.rejects
    assert wait_until(lambda: rejects["unrequested_snapshot"] >= len(recorded))
    assert fresh.net.shard_sync.version is None
    assert fresh.store.shard.account("tok-erased") is None
