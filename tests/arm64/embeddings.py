"""Print the shipped models' embeddings of the demo's two portraits as JSON.

Run by tests/arm64/test_emulated_pi.py with the installed terminal's python inside the
emulated arm64 root filesystem, and with the checkout's python on this machine: the two
outputs must agree within int8 tolerance. Usage: python embeddings.py MODELS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from device.demo.portraits import PORTRAITS, load_portrait
from device.vision.config import VisionConfig
from device.vision.pipeline import FacePipeline


def main() -> None:
    pipeline = FacePipeline.from_config(VisionConfig(models_dir=Path(sys.argv[1])))
    out = {}
    for key in sorted(PORTRAITS):
        faces = pipeline.process(load_portrait(key), 0.0, track=False, passive=False)
        embedding = faces[0].embedding if faces else None
        out[key] = None if embedding is None else [round(float(x), 6) for x in embedding]
    out["embedder_version"] = pipeline.embedder_version
    print(json.dumps(out))


if __name__ == "__main__":
    main()
