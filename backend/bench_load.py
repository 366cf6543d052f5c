"""`blinkpay-host bench load`: the host under load, end to end (docs/scaling.md).

A private mosquitto on a free loopback port, the store (a SQLite file, a PostgreSQL
server the bench starts in a temp dir, or a fresh schema on a server you name), W real
`blinkpay-host serve` worker processes sharing the terminals' requests through the MQTT 5
shared subscription, and N registered terminals with an enrolled customer each
(backend/bench_terminals.py, many paho clients per process). With --kill-worker one worker
is SIGKILLed half-way and restarted like systemd would; its broker session ends with its
connection (a host keeps none), so the other worker gets every request meanwhile and what
the dead one held is made up for by the terminals (rows resent until acknowledged,
unanswered authorizations decided offline). The report: authorizations per second, latency
p50/p99, the CPU of each part (backend/bench_cpu.py) and the books (backend/bench_books.py)."""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from backend.bench_books import books
from backend.bench_cpu import CpuMeter
from backend.bench_terminals import Outcome, Spec, run_fleet
from backend.config import load_host_config
from backend.db import HostDb
from backend.host import PaymentHost
from backend.store.pg_server import TempPostgres
from device.crypto.signing import private_key_from_pem, private_pem, sign_document
from device.errors import BlinkpayError
from device.net.local_broker import LocalBroker, mosquitto_binary
from device.net.topics import DeviceTopics

TERMINALS_PER_PROCESS = 500
START_BALANCE = 10_000_000
AMOUNT = 250
PROBE = "bench-probe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--terminals", type=int, default=100, help="simulated terminals")
    parser.add_argument(
        "--rate", type=float, default=250.0, help="payments offered per second, all terminals"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of offered load")
    parser.add_argument("--workers", type=int, default=2, help="`blinkpay-host serve` processes")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="sqlite (a temp file), postgresql (a server the bench starts in a temp dir), "
        "or postgresql://... (a server of yours: the bench works in a schema of its own "
        "and drops it after)",
    )
    parser.add_argument(
        "--kill-worker", action="store_true", help="SIGKILL one worker half-way, then restart it"
    )
    parser.add_argument(
        "--restart-after", type=float, default=1.0, help="seconds before the killed one restarts"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def report_text(report: dict[str, Any]) -> str:
    return "\n".join(f"{key:>22}: {value}" for key, value in report.items())


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


class _Store:
    """The database the workers share, and how to take it down after."""

    def __init__(self, db: str, folder: Path) -> None:
        self.kind = "sqlite"
        self._server: TempPostgres | None = None
        self._schema: str | None = None
        self._admin_url = ""
        if db == "sqlite":
            self.target = str(folder / "host.db")
        elif db == "postgresql":
            self._server = TempPostgres().start()
            self.kind, self.target = "postgresql", self._server.url()
        elif db.startswith(("postgresql://", "postgres://")):
            import psycopg

            self._schema = f"bench_{uuid.uuid4().hex[:12]}"
            self._admin_url = db
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self._schema}"')
            joiner = "&" if "?" in db else "?"
            self.kind = "postgresql"
            self.target = f"{db}{joiner}options=-csearch_path%3D{self._schema}"
        else:
            self.target = db  # a SQLite path of yours

    @property
    def server_pid(self) -> int | None:
        """The PostgreSQL server the bench runs (its CPU is measured), else None."""
        return self._server.pid if self._server is not None else None

    def close(self) -> None:
        if self._schema is not None:
            import psycopg

            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self._schema}" CASCADE')
        if self._server is not None:
            self._server.stop()


class _Workers:
    def __init__(self, folder: Path, base: dict[str, Any], count: int) -> None:
        self.configs = []
        for index in range(count):
            path = folder / f"worker-{index}.toml"
            path.write_bytes(tomli_w.dumps({**base, "host_id": f"worker-{index}"}).encode())
            self.configs.append(path)
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarts = 0

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        log = (self.folder / f"worker-{index}.log").open("ab")
        command = [
            sys.executable,
            "-m",
            "backend.cli",
            "serve",
            "--config",
            str(self.configs[index]),
        ]
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.processes = [self.spawn(i) for i in range(len(self.configs))]

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.poll() is None]

    def kill_and_restart(self, index: int, after_s: float, meter: CpuMeter) -> None:
        meter.worker_ends(self.processes[index].pid)
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(10)
        time.sleep(after_s)
        self.processes[index] = self.spawn(index)
        self.restarts += 1

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def crashed(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p.poll() is not None]


def _setup(folder: Path, store: _Store, broker_url: str, terminals: int) -> dict[str, Any]:
    """Keys, host config, terminals registered and customers enrolled (the real paths)."""
    from backend.cli import make_keys

    make_keys(folder / "keys")
    base = {
        "db_path" if store.kind == "sqlite" else "db_url": store.target,
        "signing_key_file": str(folder / "keys" / "signing.pem"),
        "pin_key_file": str(folder / "keys" / "pin.key"),
        "hold_check_s": 5.0,
        "mqtt": {"url": broker_url, "shard_id": "bench"},
    }
    (folder / "host.toml").write_bytes(tomli_w.dumps({**base, "host_id": "bench-setup"}).encode())
    host = PaymentHost(load_host_config(folder / "host.toml"), serve=False)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    rng = np.random.default_rng(1)
    devices = []
    try:
        for index in range(terminals + 1):
            device_id = PROBE if index == terminals else f"bench-{index:05d}"
            key = Ed25519PrivateKey.generate()
            host.register_device(device_id, key.public_key(), shard_id="bench")
            token = f"cust-{index:05d}"
            if index < terminals:
                vector = rng.standard_normal(host.config.dim).astype(np.float32)
                host.enrol(token, vector, shard_id="bench", daily_limit=10**12,
                           balance=START_BALANCE, publish=False)  # fmt: skip
            devices.append((device_id, private_pem(key), token))
    finally:
        host.db.close()
    return {"base": base, "devices": devices}


def _wait_for_workers(spec: Spec, workers: _Workers, count: int, timeout: float) -> None:
    """Probe authorizations (an unknown customer: declined, no money) until every worker
    has answered one: each is connected and in the shared subscription."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from device.net.schemas import dumps

    seen: set[str] = set()
    # The probe is a registered terminal too: the host answers only signed requests.
    probe_key = private_key_from_pem(spec.devices[0][1], Path("bench probe"))
    topics = DeviceTopics(spec.prefix, PROBE)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=PROBE, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: seen.add(json.loads(m.payload)["host_id"])
    client.connect(spec.host, spec.port)
    client.subscribe(topics.auth_resp, 1)
    client.loop_start()
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < count:
            if time.monotonic() > deadline or workers.crashed():
                raise BlinkpayError(
                    f"workers not serving after {timeout:.0f} s (answered: {sorted(seen)};"
                    f" exited: {workers.crashed()}); see {workers.folder}/worker-*.log"
                )
            probe = {"v": 1, "request_id": uuid.uuid4().hex, "device_id": PROBE,
                     "tx_id": str(uuid.uuid4()), "amount": 1, "currency": "EUR",
                     "ts": time.time(), "candidates": [{"token": "cust-probe"}]}  # fmt: skip
            probe["signature"] = sign_document(probe, probe_key)
            client.publish(topics.auth_req, dumps(probe), 1)
            time.sleep(0.2)
    finally:
        client.loop_stop()
        client.disconnect()


def _merge(outcomes: list[Outcome]) -> Outcome:
    total = Outcome()
    for part in outcomes:
        for name in ("answered_in_run", "sent", "skipped_busy", "approved", "declined",
                     "timeouts", "late_or_duplicate", "bad_signature", "row_resends",
                     "cpu_s"):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.latencies_ms.extend(part.latencies_ms)
        total.rows.update(part.rows)
    return total


def _fleet_results(children: list[Any], results: Any, deadline: float) -> list[Any]:
    """Each terminal process's outcome; a process that died without one is an error at
    once, not a wait until the deadline."""
    outcomes: list[Any] = []
    while len(outcomes) < len(children):
        try:
            status, value = results.get(timeout=1.0)
        except queue.Empty:
            dead = [c.exitcode for c in children if c.exitcode not in (None, 0)]
            if dead:
                raise BlinkpayError(f"simulated terminals died (exit codes {dead})") from None
            if time.time() > deadline:
                raise BlinkpayError("simulated terminals did not finish in time") from None
            continue
        if status != "ok":
            raise BlinkpayError(f"simulated terminals failed: {value}")
        outcomes.append(value)
    return outcomes


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    binary = mosquitto_binary()
    if binary is None:
        raise BlinkpayError("mosquitto not found (apt install mosquitto)")
    if args.terminals < 1 or args.workers < 1 or args.rate <= 0 or args.duration <= 0:
        raise BlinkpayError("--terminals, --workers, --rate and --duration must be positive")
    folder = Path(tempfile.mkdtemp(prefix="blinkpay-bench-"))
    broker = LocalBroker(folder / "broker", binary)
    with broker.config_path.open("a") as conf:
        conf.write("max_queued_messages 0\n")  # queue, never drop (expired requests aside)
    broker.start()
    store = _Store(args.db, folder)
    workers = _Workers(folder, {}, 0)
    try:
        setup = _setup(folder, store, broker.url, args.terminals)
        workers = _Workers(folder, setup["base"], args.workers)
        workers.start()
        host_key = (folder / "keys" / "signing.pub.pem").read_bytes()
        config = load_host_config(folder / "host.toml")
        processes = max(1, math.ceil(args.terminals / TERMINALS_PER_PROCESS))
        common = dict(host="127.0.0.1", port=broker.port, prefix=config.mqtt.prefix,
                      host_key_pem=host_key, rate=args.rate / processes,
                      duration_s=args.duration, drain_s=max(45.0, args.duration),
                      auth_timeout_s=config.mqtt.auth_timeout_s,
                      tx_retry_s=config.mqtt.tx_retry_s,
                      amount=AMOUNT, currency=config.currency)  # fmt: skip
        probe = Spec(devices=setup["devices"][args.terminals :], start_at=0.0, **common)  # type: ignore[arg-type]
        _wait_for_workers(probe, workers, args.workers, timeout=120.0)
        fleet = setup["devices"][: args.terminals]
        start_at = time.time() + 3.0 + args.terminals / 400  # time to connect every client
        # spawn, not fork: a fork of this process copies whatever lock another thread
        # held at that instant (a test runner's, a logging handler's) and can hang forever
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        children = [
            context.Process(
                target=run_fleet,
                args=(Spec(devices=fleet[i::processes], start_at=start_at, **common), results),  # type: ignore[arg-type]
            )
            for i in range(processes)
        ]
        for child in children:
            child.start()
        meter = CpuMeter(broker.pid, store.server_pid)
        time.sleep(max(0.0, start_at - time.time()))
        meter.start(workers.pids())
        killed_at = None
        if args.kill_worker:
            time.sleep(max(0.0, start_at + args.duration / 2 - time.time()))
            killed_at = round(time.time() - start_at, 2)
            workers.kill_and_restart(0, args.restart_after, meter)
        outcomes = _fleet_results(children, results, start_at + args.duration + 600)
        for child in children:
            child.join(30)
        out = _merge(outcomes)
        cpu = meter.stop(workers.pids(), out.cpu_s, out.sent)
        crashed = workers.crashed()
        workers.stop()
        db = HostDb(store.target)
        try:
            start = {token: START_BALANCE for _, _, token in fleet}
            ledger = books(db, out.rows, start)
        finally:
            db.close()
    finally:
        workers.stop()
        store.close()
        broker.stop()
    shutil.rmtree(folder, ignore_errors=True)  # kept (worker logs) when the bench failed
    return {
        "db": store.kind,
        "terminals": args.terminals,
        "workers": args.workers,
        "terminal_processes": processes,
        "rate_offered": args.rate,
        "duration_s": args.duration,
        "auth_per_s": round(out.answered_in_run / args.duration, 1),
        "auth_p50_ms": _percentile(out.latencies_ms, 50),
        "auth_p99_ms": _percentile(out.latencies_ms, 99),
        "auth_max_ms": round(max(out.latencies_ms), 1) if out.latencies_ms else None,
        "payments": out.sent,
        "skipped_busy": out.skipped_busy,
        "declined": out.declined,
        "auth_timeouts": out.timeouts,
        "late_answers": out.late_or_duplicate,
        "bad_signatures": out.bad_signature,
        "row_resends": out.row_resends,
        **ledger,
        "cpu_ms_per_payment": cpu,
        "worker_killed": bool(args.kill_worker),
        "killed_at_s": killed_at,
        "worker_restarts": workers.restarts,
        "workers_crashed": crashed,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
