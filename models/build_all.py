"""Rebuild every shipped model and models/manifest.json from their published weights.

Needs the toolchain (`pip install -e .[models]`), LFW view 1 in ../shared/data for
calibration and parity, Minivision's MiniFASNet state dicts in
../shared/models-src/minifasnet and the released MobileFaceNet flatbuffer in
../shared/models-src/mobilefacenet (after the MediaPipe models: it aligns faces with them).
Run: python models/build_all.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = (
    "build_embedder.py",
    "quantise_mediapipe.py",
    "build_minifasnet.py",
    "build_mobilefacenet.py",
)


def main() -> None:
    for script in STEPS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, check=True)


if __name__ == "__main__":
    main()
