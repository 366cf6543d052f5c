"""Which board this is: the self-test refuses to call simulated hardware "ok" on a real Pi."""

from __future__ import annotations

from pathlib import Path

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def board_model(model_file: Path = DEVICE_TREE_MODEL) -> str | None:
    """The device-tree model string ("Raspberry Pi 5 Model B Rev 1.0"), None off a board."""
    try:
        return model_file.read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def raspberry_pi_model(model_file: Path = DEVICE_TREE_MODEL) -> str | None:
    """The model when this is a Raspberry Pi, else None."""
    model = board_model(model_file)
    return model if model and model.startswith("Raspberry Pi") else None
