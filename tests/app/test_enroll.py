"""`blinkpay enrol` (and `enroll`): a template of the terminal's embedder version from photos."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device.demo.portraits import portrait_path
from device.errors import BlinkpayError
from tests.conftest import two_people_photo


@pytest.fixture
def portrait() -> Path:
    try:
        return portrait_path("collins")
    except BlinkpayError as exc:
        pytest.skip(str(exc))


def test_enroll_prints_a_unit_template(blinkpay_command: list[str], portrait: Path) -> None:
    result = subprocess.run(
        [*blinkpay_command, "enroll", str(portrait), str(portrait)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    vector = np.frombuffer(base64.b64decode(template["vector_b64"]), "<f4")
    assert vector.shape == (template["dim"],) and template["fused"] == 2
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert template["embedder_version"]


def test_enrol_refuses_a_photo_of_two_people(
    blinkpay_command: list[str], portrait: Path, tmp_path: Path
) -> None:
    pair = two_people_photo(tmp_path / "pair.png")
    result = subprocess.run(
        [*blinkpay_command, "enrol", str(portrait), str(pair)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and not result.stdout
    assert f"{pair}: 2 faces; give a photo of one person only" in result.stderr
    # One name in the overview; the other spelling still works.
    overview = subprocess.run([*blinkpay_command, "--help"], capture_output=True, text=True)
    assert "  enrol " in overview.stdout and "enroll" not in overview.stdout


def test_enroll_refuses_what_it_cannot_use(blinkpay_command: list[str], tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    for args, message in (
        ([str(tmp_path / "missing.jpg")], "no such file"),
        ([str(blank)], "blank.png: no face found"),
    ):
        result = subprocess.run(
            [*blinkpay_command, "enroll", *args], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert message in result.stderr and "Traceback" not in result.stderr


def test_enroll_accepts_webp_pgm_and_tiff(
    blinkpay_command: list[str], portrait: Path, tmp_path: Path
) -> None:
    import cv2

    image = cv2.imread(str(portrait))
    paths = [tmp_path / "phone.webp", tmp_path / "scan.pgm", tmp_path / "scan.tiff"]
    cv2.imwrite(str(paths[0]), image)
    cv2.imwrite(str(paths[1]), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(paths[2]), image)
    result = subprocess.run(
        [*blinkpay_command, "enroll", *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fused"] == 3
