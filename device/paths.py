"""Where the terminal finds its shipped files and keeps its data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALLED_MODELS_DIR = Path("/opt/blinkpay/models")
DEFAULT_CONFIG_PATH = Path("/etc/blinkpay/config.toml")
DEFAULT_DATA_DIR = Path("/var/lib/blinkpay")
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def default_models_dir() -> Path:
    """models/ beside the package (a checkout or an editable install), else the installed copy."""
    override = os.environ.get("BLINKPAY_MODELS_DIR")
    if override:
        return Path(override)
    beside = REPO_ROOT / "models"
    if (beside / "manifest.json").exists():
        return beside
    return INSTALLED_MODELS_DIR
