"""`blinkpay-host` against a real mosquitto: keys, enrol (from a template file and from
photos through the terminal's own models), account changes, device keys, snapshots, and
`serve` as a process of its own answering a terminal."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main
from backend.config import load_host_config
from device.core.events import AuthCandidate
from device.store.updates import encode_vector
from tests.conftest import Broker, two_people_photo
from tests.net.conftest import DIM, EMBEDDER, SHARD, BackendKeys, make_terminal, unit_vector
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt


def host_toml(broker: Broker, keys: BackendKeys, folder: Path, **extra: object) -> Path:
    settings = {
        "host_id": "host-cli",
        "db_path": str(folder / "host.db"),
        "signing_key_file": str(keys.signing_key_file),
        "pin_key_file": str(keys.pin_key_file),
        "embedder_version": EMBEDDER,
        "dim": DIM,
        **extra,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["[mqtt]", f'url = "{broker.url}"', f'shard_id = "{SHARD}"', "keepalive_s = 5"]
    path = folder / "host.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def test_keys_are_private_and_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, made = run_cli(capsys, "keys", str(tmp_path / "k"))
    assert code == 0
    for name in ("signing_key_file", "pin_key_file"):
        assert stat.S_IMODE(os.stat(made[name]).st_mode) == 0o600
    before = Path(made["signing_key_file"]).read_bytes()
    assert main(["keys", str(tmp_path / "k")]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert Path(made["signing_key_file"]).read_bytes() == before


def test_enrol_account_device_and_snapshot_reach_a_terminal(
    broker: Broker,
    backend_keys: BackendKeys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = host_toml(broker, backend_keys, tmp_path / "host")
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    net, shard = terminal.net, terminal.store.shard
    # Registered first: its signing key, and its X25519 key the shard's templates are
    # sealed to (without it the terminal could open none of them).
    pub, box = tmp_path / "gate.pub", tmp_path / "gate.x25519.pub"
    pub.write_bytes(terminal.public_key_pem())
    box.write_bytes(terminal.box_public_pem())
    argv = ["device", "add", "--config", str(config), "gate-01", str(pub), "--x25519", str(box)]
    code, out = run_cli(capsys, *argv, "--shard", SHARD)
    assert code == 0 and out["registered"] and out["templates_sealed_to_it"]
    try:
        net.start()  # no host serves: the boot snapshot request goes unanswered
        assert net.link.wait_connected(5)
        code, out = run_cli(capsys, "snapshot", "--config", str(config))
        assert code == 0 and out["published"]
        assert wait_until(lambda: net.shard_sync.version is not None)

        template = tmp_path / "alice.json"
        template.write_text(
            json.dumps({"embedder_version": EMBEDDER, "vector_b64": encode_vector(unit_vector(3))})
        )
        monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
        code, out = run_cli(
            capsys, "enrol", "--config", str(config), "tok-alice",
            "--template", str(template), "--balance", "900", "--pin-stdin",
        )  # fmt: skip
        assert code == 0 and out["published"]
        assert wait_until(lambda: shard.account("tok-alice") is not None)
        assert shard.search(unit_vector(3), k=1)[0][0] == "tok-alice"

        code, out = run_cli(
            capsys, "account", "set", "--config", str(config), "tok-alice", "suspend"
        )
        assert code == 0 and out["published"]
        assert wait_until(lambda: shard.account("tok-alice").status == "suspended")

    finally:
        terminal.stop()

    # A template of another embedder and a bad PIN are refused with one line each.
    other = {"embedder_version": "other-v2", "vector_b64": encode_vector(unit_vector(5))}
    template.write_text(json.dumps(other))
    assert main(["enrol", "--config", str(config), "tok-x", "--template", str(template)]) == 1
    assert "other-v2" in capsys.readouterr().err
    template.write_text(json.dumps({**other, "embedder_version": EMBEDDER}))
    monkeypatch.setattr(sys, "stdin", io.StringIO("12\n"))
    argv = ["enrol", "--config", str(config), "tok-x", "--template", str(template), "--pin-stdin"]
    assert main(argv) == 1
    assert "4 to 12 digits" in capsys.readouterr().err


def test_enrol_from_photos_uses_the_terminals_models(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    faces = pytest.importorskip("device.demo.portraits")
    try:
        photo = faces.portrait_path("collins")
    except Exception as exc:  # the demo extra (scikit-image) is not installed
        pytest.skip(str(exc))
    from device.config import Config
    from device.vision.pipeline import FacePipeline

    pipeline = FacePipeline.from_config(Config().vision)
    config = host_toml(
        broker, backend_keys, tmp_path / "host",
        embedder_version=pipeline.embedder_version, dim=pipeline.embedder.dim,
    )  # fmt: skip
    code, out = run_cli(
        capsys, "enrol", "--config", str(config), "tok-eileen", "--images", str(photo)
    )
    assert code == 0 and out["published"] and out["seq"] == 1
    host = load_host_config(config)
    with sqlite3.connect(host.db_path) as db:
        blob, version = db.execute(
            "SELECT vector, embedder_version FROM templates WHERE token = 'tok-eileen'"
        ).fetchone()
    vector = np.frombuffer(blob, "<f4")
    assert version == pipeline.embedder_version and vector.shape == (pipeline.embedder.dim,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4

    # The same face under another account is refused, as the console refuses it, and so is
    # a photo of two people (`enroll`, the other spelling, is the same command).
    argv = ["enroll", "--config", str(config), "tok-again", "--images", str(photo)]
    assert main(argv) == 1
    assert "already enrolled as tok-eileen" in capsys.readouterr().err
    pair = two_people_photo(tmp_path / "pair.png")
    assert main(["enrol", "--config", str(config), "tok-two", "--images", str(pair)]) == 1
    assert "2 faces; give a photo of one person only" in capsys.readouterr().err
    with sqlite3.connect(host.db_path) as db:
        assert db.execute("SELECT count(*) FROM templates").fetchone()[0] == 1


def test_serve_runs_as_a_process_and_stops_on_sigterm(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    config = host_toml(broker, backend_keys, tmp_path / "host")
    template = tmp_path / "bob.json"
    template.write_text(
        json.dumps({"embedder_version": EMBEDDER, "vector_b64": encode_vector(unit_vector(4))})
    )
    assert main(["enrol", "--config", str(config), "tok-bob", "--template", str(template),
                 "--balance", "500"]) == 0  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    terminal = make_terminal(broker.url, backend_keys, tmp_path / "dev")
    pub, box = tmp_path / "gate.pub", tmp_path / "gate.x25519.pub"
    pub.write_bytes(terminal.public_key_pem())
    box.write_bytes(terminal.box_public_pem())
    argv = ["device", "add", "--config", str(config), "gate-01", str(pub), "--x25519", str(box)]
    assert main([*argv, "--shard", SHARD]) == 0
    try:
        terminal.net.start()
        assert wait_until(lambda: terminal.store.shard.account("tok-bob") is not None, 20)
        reply = terminal.net.authorize(
            tx_id="018f4e2c-0000-7000-8000-0000000000aa",
            amount=120,
            currency="EUR",
            candidates=[AuthCandidate("tok-bob")],
            timeout_s=5,
        )
        assert reply is not None, server.stderr.read1().decode() if server.stderr else ""
        assert reply.approved and reply.host_id == "host-cli"
    finally:
        terminal.stop()
        server.send_signal(signal.SIGTERM)
        code = server.wait(10)
    assert code == 0, server.stderr.read().decode() if server.stderr else ""
