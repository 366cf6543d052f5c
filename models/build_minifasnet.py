"""Rebuild Minivision's MiniFASNet pair (passive anti-spoofing) as TFLite and measure parity.

Weights: the publisher's two PyTorch state dicts (Apache-2.0), kept outside the repository
in ../shared/models-src/minifasnet (or --weights). Steps:

1. rebuild each network in PyTorch from models/minifasnet.py and load the state dict
   strictly; rebuild it in tf_keras with the batch norms folded; check Keras == PyTorch;
2. check the publisher's labels on its sample photos (image_F1 and image_F2 fake,
   image_T1 real), with the terminal's own detector and crop code;
3. convert to full int8 (uint8 input: the raw 0..255 BGR pixels, exact at scale 1) and
   to float16, calibrating int8 on LFW pairsDevTrain and Yale faces (no attack images);
4. measure both against the float model on the sample photos and the images of
   ../shared/data/liveness/pad; ship int8 when it holds (every summed-argmax label equal
   to float's and the mean real probability within MAX_REAL_DELTA), else float16;
5. write models/<file>.tflite and the manifest entries (roles passive_v2, passive_v1se).

Nothing derived from the images is written. Run: python models/build_minifasnet.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _common import (
    LFW_DIR,
    MODELS_DIR,
    REPO_ROOT,
    SHARED_DATA_DIR,
    LiteRtModel,
    ms_per_call,
    package_version,
    update_manifest,
)
from face_chips import pair_images
from minifasnet import (
    INPUT_SIZE,
    VARIANTS,
    Variant,
    build_keras,
    build_torch,
    read_state_dict,
    torch_probabilities,
)
from tflite_fixups import op_versions

# the terminal's own detector and crop code, so the checks see what the terminal sees
sys.path.insert(0, str(REPO_ROOT))
from device.vision.detector import FaceDetector
from device.vision.images import ImageError, to_rgb
from device.vision.models import load_manifest
from device.vision.passive import PASSIVE_ROLES, REAL_CLASS, context_crop

WEIGHTS_DIR = REPO_ROOT.parent / "shared" / "models-src" / "minifasnet"
ATTACK_PHOTOS = SHARED_DATA_DIR / "liveness" / "attack-photos"
PAD_DIR = SHARED_DATA_DIR / "liveness" / "pad"
YALE_DIR = SHARED_DATA_DIR / "liveness" / "yalefaces"
# the publisher's README: F1 a printed photo, F2 a tablet screen, T1 a live person
PUBLISHED_LABELS = {"image_F1.jpg": False, "image_F2.jpg": False, "image_T1.jpg": True}
ROLE_OF = {variant.name: f"passive_{variant.short}" for variant in VARIANTS}
assert set(ROLE_OF.values()) == set(PASSIVE_ROLES)
MAX_KERAS_DELTA = 1e-4
MAX_REAL_DELTA = 0.05  # int8 ships only within this of float on every sample
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DETECTOR_MIN_SCORE = 0.5
LICENCE = "Apache-2.0 (Minivision, Silent-Face-Anti-Spoofing; models/LICENSE.minifasnet)"
SOURCE_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"


def upright_rgb(path: Path) -> np.ndarray:
    """RGB uint8 with the EXIF orientation applied (the publisher's samples carry one:
    cv2.imread turns them upright, the terminal's read_image does not)."""
    import cv2

    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise ImageError(f"{path}: cannot decode")
    return to_rgb(image)


class Faces:
    """The largest face per image, found by the terminal's own detector."""

    def __init__(self) -> None:
        self.detector = FaceDetector(load_manifest(), 2, DETECTOR_MIN_SCORE)

    def box(self, rgb: np.ndarray) -> tuple[float, float, float, float] | None:
        found = self.detector.detect(rgb)
        if not found:
            return None
        return max(found, key=lambda d: d.width * d.height).box

    def samples(self, paths: list[Path]) -> Iterator[tuple[Path, np.ndarray, tuple]]:
        for path in paths:
            try:
                rgb = upright_rgb(path)
            except ImageError:
                continue
            box = self.box(rgb)
            if box is not None:
                yield path, rgb, box


def crops(samples: list[tuple[Path, np.ndarray, tuple]], variant: Variant) -> np.ndarray:
    size = (INPUT_SIZE, INPUT_SIZE)
    return np.stack(
        [context_crop(rgb, box, variant.context_scale, size) for _, rgb, box in samples]
    )


def convert(model, mode: str, calibration: np.ndarray | None = None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    assert calibration is not None

    def representative() -> Iterator[list[np.ndarray]]:
        for crop in calibration:
            yield [crop[None].astype(np.float32)]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # raw pixels: scale 1, zero point 0
    converter.inference_output_type = tf.int8
    return converter.convert()


class Tflite(LiteRtModel):
    """A converted MiniFASNet as the terminal runs it: class probabilities of one crop."""

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        probs = np.clip(self.first_output(crop[None].astype(self.input["dtype"]))[0], 0, None)
        return probs / probs.sum()

    def ms_per_run(self, crop: np.ndarray, runs: int = 200) -> float:
        return round(ms_per_call(lambda: self(crop), runs, warmup=10), 3)


def summary(values: list[float]) -> dict[str, float]:
    array = np.abs(np.asarray(values, np.float64))
    return {
        "mean": round(float(array.mean()), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
        "max": round(float(array.max()), 4),
    }


def parity(float_probs: dict[str, np.ndarray], tflite_probs: dict[str, np.ndarray]) -> dict:
    """Per model |delta real probability|, and the pair's mean real probability and
    summed-argmax label, against the float (Keras == PyTorch) model."""
    result: dict = {}
    for name in float_probs:
        delta = tflite_probs[name][:, REAL_CLASS] - float_probs[name][:, REAL_CLASS]
        result[f"{name}_real_abs_delta"] = summary(list(delta))
    float_sum = sum(float_probs.values())
    tflite_sum = sum(tflite_probs.values())
    pair_delta = (tflite_sum[:, REAL_CLASS] - float_sum[:, REAL_CLASS]) / len(float_probs)
    result["pair_real_abs_delta"] = summary(list(pair_delta))
    agree = np.argmax(float_sum, 1) == np.argmax(tflite_sum, 1)
    result["samples"] = len(agree)
    result["label_disagreements"] = int((~agree).sum())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--calibration", type=int, default=300, help="calibration faces")
    args = parser.parse_args()
    for needed in (ATTACK_PHOTOS, PAD_DIR, LFW_DIR / "pairsDevTrain.txt", YALE_DIR):
        if not needed.exists():
            raise SystemExit(f"need {needed}")
    started = time.monotonic()
    faces = Faces()

    published = list(faces.samples([ATTACK_PHOTOS / name for name in PUBLISHED_LABELS]))
    if len(published) != len(PUBLISHED_LABELS):
        raise SystemExit("the detector missed a face in the publisher's sample photos")
    pad_paths = sorted(p for p in PAD_DIR.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    evaluation = published + list(faces.samples(pad_paths))
    train = pair_images(LFW_DIR / "pairsDevTrain.txt")
    lfw_count = args.calibration * 2 // 3
    lfw_paths = [LFW_DIR / "images" / name for name in train[:: max(1, len(train) // lfw_count)]]
    yale_paths = sorted(YALE_DIR.rglob("*.gif"))
    calibration_samples = list(faces.samples(lfw_paths[:lfw_count] + yale_paths))
    calibration_samples = calibration_samples[: args.calibration]
    print(
        f"evaluation: {len(evaluation)} faces ({len(published)} publisher samples, "
        f"{len(evaluation) - len(published)} of {len(pad_paths)} pad images); "
        f"calibration: {len(calibration_samples)} LFW DevTrain + Yale faces"
    )

    keras_probs: dict[str, np.ndarray] = {}
    eval_crops = {variant.name: crops(evaluation, variant) for variant in VARIANTS}
    converted: dict[str, dict[str, Tflite]] = {"int8": {}, "float16": {}}
    checks: dict[str, dict] = {}
    for variant in VARIANTS:
        state = read_state_dict(args.weights / variant.weights_file)
        net = build_torch(variant, state)
        model = build_keras(variant, state)
        reference = torch_probabilities(net, eval_crops[variant.name])
        keras_probs[variant.name] = model.predict(
            eval_crops[variant.name].astype(np.float32), verbose=0
        )
        keras_delta = float(np.abs(keras_probs[variant.name] - reference).max())
        if keras_delta > MAX_KERAS_DELTA:
            raise SystemExit(f"{variant.name}: Keras differs from PyTorch by {keras_delta}")
        # the publisher's ToTensor feeds 0..255; x/255 would be the usual mistake
        scaled = torch_probabilities(net, eval_crops[variant.name][: len(published)] / 255.0)
        checks[variant.name] = {
            "keras_vs_pytorch_max_abs_delta": keras_delta,
            "labels_if_input_divided_by_255": [int(np.argmax(p)) for p in scaled],
        }
        calibration = crops(calibration_samples, variant)
        converted["int8"][variant.name] = Tflite(convert(model, "int8", calibration))
        converted["float16"][variant.name] = Tflite(convert(model, "float16"))

    float_sum = sum(keras_probs.values())
    for index, (path, _, _) in enumerate(published):
        label = int(np.argmax(float_sum[index]))
        print(f"{path.name}: summed {np.round(float_sum[index], 4)} -> class {label}")
        if (label == REAL_CLASS) != PUBLISHED_LABELS[path.name]:
            raise SystemExit(f"{path.name}: the float model disagrees with the publisher")

    measured: dict[str, dict] = {}
    for mode, models in converted.items():
        outputs = {
            name: np.stack([models[name](crop) for crop in eval_crops[name]]) for name in models
        }
        measured[mode] = parity(keras_probs, outputs)
        published_labels = [int(np.argmax(sum(o[i] for o in outputs.values()))) for i in range(3)]
        measured[mode]["publisher_sample_labels"] = published_labels
        sample = eval_crops[VARIANTS[0].name][0]
        measured[mode]["x86_ms_1_thread"] = {
            name: models[name].ms_per_run(sample) for name in models
        }
        print(mode, json.dumps(measured[mode]))
    int8 = measured["int8"]
    int8_holds = (
        int8["label_disagreements"] == 0 and int8["pair_real_abs_delta"]["max"] <= MAX_REAL_DELTA
    )
    shipped = "int8" if int8_holds else "float16"
    other = "float16" if shipped == "int8" else "int8"
    print(f"shipping {shipped} (int8 holds: {int8_holds})")
    expected = [REAL_CLASS if real else -1 for real in PUBLISHED_LABELS.values()]
    for label, want in zip(measured[shipped]["publisher_sample_labels"], expected, strict=True):
        if (label == REAL_CLASS) != (want == REAL_CLASS):
            raise SystemExit(f"the {shipped} models disagree with the publisher's labels")

    reference_text = (
        "float model (tf_keras rebuild, equal to the PyTorch rebuild loading the published "
        f"state dict) on {len(evaluation)} faces: the publisher's 3 sample photos and "
        f"{len(evaluation) - len(published)} images of liveness/pad (largest face found by "
        "the terminal's detector, the terminal's crop code)"
    )
    for variant in VARIANTS:
        role = ROLE_OF[variant.name]
        tflite = converted[shipped][variant.name]
        filename = f"minifasnet_{variant.short}_{shipped}.tflite"
        (MODELS_DIR / filename).write_bytes(tflite.content)
        input_detail, output_detail = tflite.input, tflite.output
        update_manifest(
            role,
            {
                "file": filename,
                "version": f"minifasnet-{variant.short}-{shipped}-1",
                "context_scale": variant.context_scale,
                "input": {
                    "shape": [int(v) for v in input_detail["shape"]],
                    "dtype": np.dtype(input_detail["dtype"]).name,
                    "normalisation": "BGR raw 0..255 [0,255] (no division: the publisher's "
                    f"ToTensor); face box scaled {variant.context_scale}x around its centre "
                    "(scale reduced to fit the image, crop shifted inside it), resized "
                    f"bilinear to {INPUT_SIZE}x{INPUT_SIZE}",
                    "quantization": quantisation(input_detail),
                },
                "output": {
                    "probabilities": {
                        "tensor": output_detail["name"],
                        "shape": [int(v) for v in output_detail["shape"]],
                        "dtype": np.dtype(output_detail["dtype"]).name,
                        "quantization": quantisation(output_detail),
                        "notes": "softmax over 3 classes, class 1 = real face; the publisher "
                        "sums both models' softmax and takes the argmax",
                    }
                },
                "quantisation": (
                    "full int8 (TFLite converter, per-channel conv weights, int8 "
                    "activations), uint8 input (scale 1: the pixels exactly), int8 output; "
                    "batch norms folded"
                    if shipped == "int8"
                    else "float16 weights (TFLite converter), float32 compute and input; "
                    "batch norms folded"
                )
                + f"; chosen by the parity under 'parity' (int8 must keep every label and "
                f"stay within {MAX_REAL_DELTA} of float), {other} under 'measured'",
                "calibration": f"{len(calibration_samples)} faces: LFW view 1 pairsDevTrain "
                "and Yale faces (live faces only; no attack image), the terminal's crop",
                "source": f"minivision-ai/Silent-Face-Anti-Spoofing {SOURCE_COMMIT}: "
                f"resources/anti_spoof_models/{variant.weights_file} (PyTorch state dict), "
                "rebuilt by models/minifasnet.py (torch "
                f"{package_version('torch')}, tensorflow {package_version('tensorflow')})",
                "licence": LICENCE,
                "op_versions": op_versions(tflite.content),
                "parity": {
                    "reference": reference_text,
                    **measured[shipped],
                    "float_checks": checks[variant.name],
                },
                "measured": {f"{other}_parity": measured[other]},
            },
        )
        print(f"{role}: {filename}")
    print(f"done in {time.monotonic() - started:.0f} s")


def quantisation(detail: dict) -> dict[str, float | int]:
    scale, zero_point = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)}


if __name__ == "__main__":
    main()
