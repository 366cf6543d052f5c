"""`blinkpay bench pipeline`: per-stage latency of the vision pipeline on real images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

if TYPE_CHECKING:
    from device.vision.pipeline import FacePipeline

HELP = "per-stage vision latency"
STAGES = (
    "decode",
    "detect",
    "landmarks",
    "eyes",
    "align",
    "embed",
    "passive",
    "light",
    "total_per_face",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images", type=Path, required=True, help="folder of images (searched recursively)"
    )
    parser.add_argument(
        "--limit", type=int, default=300, help="at most this many images (default 300)"
    )
    parser.add_argument("--threads", type=int, default=None, help="override vision.threads")
    parser.add_argument(
        "--compare-embedders",
        action="store_true",
        help="run one pipeline per shipped embedder (vision.embedder) on every image, "
        "interleaved, and report each one's stages (`embedders`) in the same run",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_argument(parser)


def _record(pipeline: FacePipeline, faces: list, decode: float, times: dict) -> int:
    """Append one processed image's stage times (per face) to `times`; faces counted."""
    st = pipeline.last_times
    times["decode"].append(decode)
    times["detect"].append(st.detect)
    if not faces:
        return 0
    n = len(faces)
    times["landmarks"].append(st.landmarks / n)
    times["eyes"].append(st.eyes / n)
    times["align"].append(st.align / n)
    times["embed"].append(st.embed / n)
    times["light"].append(st.light / n)
    # per face the passive models actually ran on (the largest passive_max_faces, and not
    # those the detection-score gate turned away)
    scored = sum(1 for face in faces if face.passive is not None and face.passive.models)
    if scored:
        times["passive"].append(st.passive / scored)
    stages = st.detect + st.landmarks + st.eyes + st.align + st.embed + st.passive + st.light
    times["total_per_face"].append((decode + stages) / n)
    return n


def _summary(times: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    return {
        stage: {
            "median": round(float(np.median(v)), 3) if v else None,
            "p95": round(float(np.percentile(v, 95)), 3) if v else None,
        }
        for stage, v in times.items()
    }


def _models(pipeline: FacePipeline) -> dict[str, str]:
    return {
        "detector": pipeline.detector.entry.version,
        "face_mesh": pipeline.mesh.entry.version,
        "embedder": pipeline.embedder_version,
        **(pipeline.passive.versions if pipeline.passive is not None else {}),
    }


def run(args: argparse.Namespace) -> int:
    from device.evaluation.progress import Progress
    from device.vision.embedder import EMBEDDER_ROLES
    from device.vision.images import IMAGE_SUFFIXES, ImageError, read_image
    from device.vision.pipeline import FacePipeline

    if not args.images.is_dir():
        raise BlinkpayError(f"--images: not a folder: {args.images}")
    found = (p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = sorted(found)[: args.limit]
    if not files:
        raise BlinkpayError(f"no images in {args.images}")
    vision = config_from_args(args).vision
    if args.threads is not None:
        vision = vision.model_copy(update={"threads": args.threads})
    names = [vision.embedder]
    if args.compare_embedders:
        names += [name for name in EMBEDDER_ROLES if name != vision.embedder]
    pipelines = {
        name: FacePipeline.from_config(vision.model_copy(update={"embedder": name}))
        for name in names
    }
    times = {name: {stage: [] for stage in STAGES} for name in names}
    faces_total = dict.fromkeys(names, 0)
    warm = read_image(files[0])
    for pipeline in pipelines.values():
        for _ in range(3):  # first invocations allocate and pack weights
            pipeline.process(warm, 0.0, track=False, gate=False)
    skipped = 0
    progress = Progress(len(files), "bench")
    for path in files:
        t = time.perf_counter()
        try:
            rgb = read_image(path)
        except ImageError:
            skipped += 1
            progress.step()
            continue
        decode = (time.perf_counter() - t) * 1000
        for name, pipeline in pipelines.items():  # interleaved: the same load for each
            faces = pipeline.process(rgb, 0.0, track=False, gate=False)
            faces_total[name] += _record(pipeline, faces, decode, times[name])
        progress.step()
    progress.close()
    main_name = names[0]
    main = pipelines[main_name]
    det = main.detector.model
    result: dict[str, Any] = {
        "images": len(files) - skipped,
        "skipped": skipped,
        "faces": faces_total[main_name],
        "runtime": det.runtime.name,
        "runtime_version": det.runtime.version,
        "threads": vision.threads,
        "models": _models(main),
        "mesh_refine": vision.mesh_refine,
        "ms": _summary(times[main_name]),
    }
    if args.compare_embedders:
        result["embedders"] = {
            name: {
                "embedder_version": pipelines[name].embedder_version,
                "faces": faces_total[name],
                "ms": _summary(times[name]),
            }
            for name in names
        }
    if args.json:
        print_json(result)
        return 0
    print(
        f"{result['images']} images, {faces_total[main_name]} faces; {result['runtime']} "
        f"{result['runtime_version']}, {vision.threads} threads"
    )
    for name in names:
        print(f"embedder {name} ({pipelines[name].embedder_version}):")
        for stage, row in _summary(times[name]).items():
            print(f"  {stage:<15} median {row['median']} ms   p95 {row['p95']} ms")
    return 0
