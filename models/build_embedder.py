"""Rebuild dlib's ResNet face descriptor as a full-int8 TFLite model and measure parity.

Calibration: dlib-aligned chips of pairsDevTrain people. Parity: pairsDevTest people
(disjoint), int8 TFLite vs dlib's own compute_face_descriptor. Nothing derived from the
faces is written to the repository: tests/vision/test_parity.py runs dlib itself.
Run: python models/build_embedder.py
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import numpy as np
from _common import (
    LFW_DIR,
    MODELS_DIR,
    LiteRtModel,
    dlib_model,
    package_version,
    update_manifest,
)
from dlib_resnet import CHIP_SIZE, DESCRIPTOR_FILE, build_keras, read_descriptor
from face_chips import CHIP_PADDING, DlibFace, DlibPipeline, pair_images, people_of

OUTPUT_FILE = "dlib_resnet_face_descriptor_int8.tflite"
EMBEDDER_VERSION = "dlib-resnet-v1-int8-1"
MIN_COSINE = 0.999
TRAINING_DATA = (
    "about 3 million faces of about 7,500 people, mostly public figures: the FaceScrub and "
    "VGG face data sets and further web photos (Davis King, dlib model release notes)"
)


def convert_int8(model, calibration_chips: np.ndarray) -> bytes:
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for chip in calibration_chips:
            yield [chip[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    return converter.convert()


class TfliteEmbedder(LiteRtModel):
    """Runs the int8 model the way the terminal does (ai-edge-litert)."""

    def __init__(self, model: bytes) -> None:
        super().__init__(model, threads=1)

    def __call__(self, chip: np.ndarray) -> np.ndarray:
        return self.first_output(chip[None].astype(np.uint8))[0].astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def opencv_chip(face: DlibFace) -> np.ndarray:
    """The chip as the terminal makes it: OpenCV bilinear warp with dlib's geometry."""
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(LFW_DIR / "images" / face.image)), cv2.COLOR_BGR2RGB)
    return cv2.warpAffine(
        rgb,
        face.chip_transform,
        (CHIP_SIZE, CHIP_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )


def summary(values: list[float]) -> dict[str, float | int]:
    array = np.asarray(values)
    return {
        "faces": len(values),
        "mean": round(float(array.mean()), 6),
        "min": round(float(array.min()), 6),
        "p01": round(float(np.percentile(array, 1)), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calibration", type=int, default=400, help="DevTrain chips")
    parser.add_argument("--parity", type=int, default=200, help="DevTest faces measured")
    args = parser.parse_args()
    if not (LFW_DIR / "pairsDevTrain.txt").exists():
        raise SystemExit(f"need LFW view 1 at {LFW_DIR} for calibration")

    started = time.monotonic()
    weights = read_descriptor(dlib_model(DESCRIPTOR_FILE))
    model = build_keras(weights)
    dlib_faces = DlibPipeline()
    test_images = pair_images(LFW_DIR / "pairsDevTest.txt")
    test_people = people_of(test_images)
    train_images = [
        image
        for image in pair_images(LFW_DIR / "pairsDevTrain.txt")
        if image.split("/")[0] not in test_people
    ]
    # Spread calibration over many people: every k-th image rather than the first names.
    step = max(1, len(train_images) // (args.calibration * 2))
    calibration = np.stack(
        [face.chip for face in dlib_faces.faces(train_images[::step], args.calibration)]
    )
    print(f"calibration: {len(calibration)} chips from pairsDevTrain")
    int8_model = convert_int8(model, calibration)
    (MODELS_DIR / OUTPUT_FILE).write_bytes(int8_model)
    embedder = TfliteEmbedder(int8_model)

    faces = list(dlib_faces.faces(test_images, args.parity))
    keras_cos, dlib_chip_cos, opencv_chip_cos = [], [], []
    keras_out = model.predict(np.stack([f.chip for f in faces]).astype(np.float32), verbose=0)
    for face, float_descriptor in zip(faces, keras_out, strict=True):
        keras_cos.append(cosine(float_descriptor, face.descriptor))
        dlib_chip_cos.append(cosine(embedder(face.chip), face.descriptor))
        opencv_chip_cos.append(cosine(embedder(opencv_chip(face)), face.descriptor))
    parity = {
        "reference": "dlib 20 compute_face_descriptor(img, shape_predictor_5 shape) on LFW "
        "pairsDevTest images (HOG detector, face nearest the centre)",
        "float_keras_vs_dlib_cosine": summary(keras_cos),
        "int8_vs_dlib_cosine": summary(dlib_chip_cos),
        "int8_on_opencv_chip_vs_dlib_cosine": summary(opencv_chip_cos),
        "notes": "int8_vs_dlib: same dlib.get_face_chip chip into both; "
        "opencv_chip: cv2.warpAffine bilinear with dlib's chip geometry (the terminal's path)",
    }
    print(json.dumps(parity, indent=2))
    if min(dlib_chip_cos) < MIN_COSINE:
        raise SystemExit(f"int8 parity below {MIN_COSINE}: {min(dlib_chip_cos):.6f}")

    details = embedder.input, embedder.output
    update_manifest(
        "embedder_dlib",
        {
            "file": OUTPUT_FILE,
            "version": EMBEDDER_VERSION,
            "embedder_version": EMBEDDER_VERSION,
            "training_data": TRAINING_DATA,
            "embedding_dim": int(embedder.output["shape"][-1]),
            "input": {
                "shape": [1, CHIP_SIZE, CHIP_SIZE, 3],
                "dtype": "uint8",
                "normalisation": "RGB uint8 0..255 aligned chip; dlib's (x - mean_rgb)/256 "
                "is folded into the first convolution",
                "mean_rgb": [round(v, 3) for v in weights.mean_rgb],
                "quantization": quantisation(details[0]),
            },
            "output": {
                "descriptor": {
                    "tensor": details[1]["name"],
                    "shape": [int(v) for v in details[1]["shape"]],
                    "dtype": "int8",
                    "quantization": quantisation(details[1]),
                    "notes": "dequantise (q - zero_point) * scale, then L2-normalise",
                }
            },
            "chip": {
                "size": CHIP_SIZE,
                "padding": CHIP_PADDING,
                "alignment": "dlib-5point",
                "notes": "dlib 5-point get_face_chip_details geometry",
            },
            "quantisation": "full int8 (TFLite converter, per-channel conv weights, int8 "
            "activations), uint8 input, int8 output; dlib's affine (batch-norm) layers folded "
            "into the convolutions",
            "calibration": f"{len(calibration)} dlib-aligned chips (dlib.get_face_chip, "
            f"size {CHIP_SIZE}, padding {CHIP_PADDING}) of LFW view 1 pairsDevTrain people "
            "not in pairsDevTest",
            "source": "PyPI face-recognition-models "
            f"{package_version('face-recognition-models')}: face_recognition_models/models/"
            f"{DESCRIPTOR_FILE}, rebuilt by models/dlib_resnet.py "
            f"(tensorflow {package_version('tensorflow')})",
            "licence": "CC0-1.0 / public domain (dlib model by Davis King, per "
            "face_recognition_models LICENSE)",
            "parity": parity,
        },
    )
    print(f"embedder: {OUTPUT_FILE} ({time.monotonic() - started:.0f} s)")


def quantisation(detail: dict) -> dict[str, float | int]:
    scale, zero_point = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)}


if __name__ == "__main__":
    main()
