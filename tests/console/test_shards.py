"""The Shards page over plain HTTP: a shard's embedder, a migration's coverage, the admin's
switch (refused below the least coverage asked for), audited, and the customers left
without a template shown as needing re-enrolment."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

with warnings.catch_warnings():  # starlette would like httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from backend.console.app import make_app
from tests.console.conftest import PASSWORD, SHARD, ConsoleRig

pytestmark = pytest.mark.mqtt

NEW = "next-embedder-test-1"


def _login(rig: ConsoleRig, name: str) -> TestClient:
    http = TestClient(make_app(rig.console), base_url="https://testserver")
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
    assert match
    response = http.post("/login", data={"name": name, "password": PASSWORD, "csrf": match[1]})
    assert response.status_code == 200, response.text
    return http


def _csrf(http: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/shards").text)
    assert match
    return match[1]


@pytest.fixture(scope="module")
def admin(rig: ConsoleRig) -> Iterator[TestClient]:
    with _login(rig, "ada") as http:
        yield http


def _unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_migrate_coverage_switch(rig: ConsoleRig, admin: TestClient) -> None:
    host = rig.console.host
    dim = host.shards.dim
    for i, token in enumerate(("shard-a", "shard-b")):
        host.enrol(token, _unit(dim, i), shard_id=SHARD, publish=False)
    page = admin.get("/shards")
    assert SHARD in page.text and host.shards.embedder_version in page.text

    with _login(rig, "vic") as viewer:  # a viewer sees, never changes
        refused = viewer.post(f"/shards/{SHARD}/migrate", data={"csrf": _csrf(viewer)})
        assert refused.status_code == 403

    bad = admin.post(f"/shards/{SHARD}/migrate", data={"csrf": _csrf(admin), "to": "x y"})
    assert bad.status_code == 400
    started = admin.post(
        f"/shards/{SHARD}/migrate", data={"csrf": _csrf(admin), "to": NEW, "dim": "24"}
    )
    assert started.status_code == 200 and "Switch to " + NEW in started.text  # after redirect
    # One customer re-enrolled with the new embedder: half the shard is covered.
    host.enrol("shard-a", _unit(24, 7), shard_id=SHARD, embedder_version=NEW, publish=False)
    (row,) = [r for r in admin.get("/api/shards").json() if r["shard_id"] == SHARD]
    assert (row["migrating_to"], row["from_enrolments"]) == (NEW, 1)
    assert row["covered"] == 1 and row["customers"] >= 2

    too_few = admin.post(
        f"/shards/{SHARD}/switch", data={"csrf": _csrf(admin), "min_coverage": "100"}
    )
    assert too_few.status_code == 400 and "below" in too_few.text
    switched = admin.post(
        f"/shards/{SHARD}/switch", data={"csrf": _csrf(admin), "min_coverage": "10"}
    )
    assert switched.status_code == 200
    (row,) = [r for r in admin.get("/api/shards").json() if r["shard_id"] == SHARD]
    assert (row["embedder_version"], row["dim"], row["migrating_to"]) == (NEW, 24, None)
    actions = [(r["operator"], r["action"], r["target"]) for r in rig.console.store.audit_log()]
    assert ("ada", "shard_switch", SHARD) in actions and ("ada", "shard_migrate", SHARD) in actions
    customers = admin.get("/customers?q=shard-").text
    assert re.search(r"shard-b</a>.*?none: re-enrol", customers, re.S)
    assert not re.search(r"shard-a</a>.*?none: re-enrol.*?shard-b", customers, re.S)
