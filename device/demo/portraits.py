"""The demo's people: public-domain photographs that PyPI packages carry, and blinks
painted onto them.

- "Eileen Collins": scikit-image's `astronaut.png` (NASA photograph, public domain).
- "Grace Hopper": matplotlib's sample `grace_hopper.jpg` (U.S. Navy photograph, public
  domain).
Only the image files are read (cv2), so neither package is imported. No third-party face
data set is used, and nothing is downloaded.

A blink is made, not faked: the eye opening found by the face mesh is painted over with
the surrounding skin (OpenCV inpainting) from the top down, with a dark lash line where the
lid closes, over a few frames. The real vision pipeline then measures those frames as
closed eyes; the liveness check is the terminal's own.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.errors import BlinkpayError

# MediaPipe face-mesh eye contours (subject's right eye, then left), in order around the eye.
RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
SHUT = 0.9  # from this closure on, the eye is shut: no opening left, a lash line
LASH_RGB = (70, 45, 40)


@dataclass(frozen=True)
class FaceSource:
    name: str
    package: str
    relative_path: str
    licence: str


PORTRAITS: dict[str, FaceSource] = {
    "collins": FaceSource(
        "Eileen Collins",
        "skimage",
        "data/astronaut.png",
        "public domain (NASA), shipped by scikit-image as data.astronaut()",
    ),
    "hopper": FaceSource(
        "Grace Hopper",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "public domain (U.S. Navy), shipped by matplotlib as sample data",
    ),
}


def portrait_path(key: str) -> Path:
    source = PORTRAITS[key]
    spec = importlib.util.find_spec(source.package)
    if spec is None or spec.origin is None:
        raise BlinkpayError(
            f"the demo face {source.name!r} comes from the {source.package} package, which is "
            "not installed; run ./install.sh --dev (it installs the demo extra)"
        )
    path = Path(spec.origin).parent / source.relative_path
    if not path.is_file():
        raise BlinkpayError(f"demo face file missing: {path}")
    return path


def load_portrait(key: str) -> np.ndarray:
    """The portrait as RGB uint8."""
    path = portrait_path(key)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BlinkpayError(f"cannot decode demo face {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _lid_curves(landmarks: np.ndarray, ring: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Columns across one eye with the upper and lower lid's y at each (corners included)."""
    pts = landmarks[list(ring), :2].astype(np.float64)
    # ring = outer corner, 7 lower-lid points, inner corner, 7 upper-lid points
    corners = pts[[0, 8]]
    lower = np.vstack([corners[0], pts[1:8], corners[1]])
    upper = np.vstack([corners[0], pts[15:8:-1], corners[1]])
    x0, x1 = float(corners[:, 0].min()), float(corners[:, 0].max())
    xs = np.arange(int(np.ceil(x0)), int(np.floor(x1)) + 1)
    lower = lower[np.argsort(lower[:, 0])]
    upper = upper[np.argsort(upper[:, 0])]
    return xs, np.interp(xs, upper[:, 0], upper[:, 1]), np.interp(xs, lower[:, 0], lower[:, 1])


def close_eyes(rgb: np.ndarray, landmarks: np.ndarray, closure: float) -> np.ndarray:
    """A copy of `rgb` with both eyelids lowered by `closure` (0 open .. 1 shut).

    `landmarks` is the (468, 2+) face mesh of this very image. Like a real blink, the
    upper lid slides down: in every column across the eye, the skin between the brow and
    the upper lid is stretched down to the new lid line and the eye opening below it is
    squeezed into what is left, so lashes and crease move with the lid.
    """
    closure = float(np.clip(closure, 0.0, 1.0))
    if closure <= 0.0:
        return rgb.copy()
    height, width = rgb.shape[:2]
    map_x, map_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    for ring in (RIGHT_EYE_RING, LEFT_EYE_RING):
        xs, upper, lower = _lid_curves(landmarks, ring)
        eye_width = float(xs[-1] - xs[0]) if xs.size else 0.0
        for x, y_up, y_low in zip(xs, upper, lower, strict=True):
            if not 0 <= x < width:
                continue
            # The mesh's lid points sit a little inside the visible opening: close past them.
            y_up -= 0.04 * eye_width
            y_low += 0.08 * eye_width
            gap = y_low - y_up
            if gap <= 0.5:
                continue
            brow = max(0.0, y_up - 0.35 * eye_width)
            new_up = y_up + closure * gap
            rows = np.arange(int(np.ceil(brow)), min(height, int(np.floor(y_low)) + 1))
            src = rows.astype(np.float64)
            above = rows <= new_up
            # brow..new lid <- brow..old lid (the lid skin stretched down)
            src[above] = brow + (rows[above] - brow) * (y_up - brow) / (new_up - brow)
            below = ~above
            if new_up < y_low:
                # new lid..lower lid <- old lid..lower lid (the opening squeezed)
                src[below] = y_up + (rows[below] - new_up) * gap / (y_low - new_up)
            else:
                src[below] = y_low
            map_y[rows, x] = src.astype(np.float32)
    out = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if closure >= SHUT:
        out = _cover_eye_openings(out, landmarks)
    if closure >= 0.7:
        # Closed lashes: a soft dark line along the lid's edge.
        shade = np.zeros(rgb.shape[:2], np.float32)
        for ring in (RIGHT_EYE_RING, LEFT_EYE_RING):
            xs, upper, lower = _lid_curves(landmarks, ring)
            if xs.size < 2:
                continue
            lid = upper + closure * (lower - upper)
            line = np.stack([xs, lid], axis=1).round().astype(np.int32)
            thickness = max(1, round((xs[-1] - xs[0]) / 14))
            cv2.polylines(shade, [line], False, 1.0, thickness, cv2.LINE_AA)
        shade = cv2.GaussianBlur(shade, (0, 0), 1.0) * 0.6 * (closure - 0.5) * 2
        out = (out.astype(np.float32) * (1.0 - shade[..., None] * 0.75)).astype(np.uint8)
    if closure >= SHUT:
        # The shut lid's edge: a crisp lash line where the lids meet.
        for ring in (RIGHT_EYE_RING, LEFT_EYE_RING):
            xs, upper, lower = _lid_curves(landmarks, ring)
            if xs.size < 2:
                continue
            line = np.stack([xs, lower], axis=1).round().astype(np.int32)
            thickness = max(1, round((xs[-1] - xs[0]) / 14))
            cv2.polylines(out, [line], False, LASH_RGB, thickness, cv2.LINE_AA)
    return out


def _cover_eye_openings(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Skin over what is left of each eye opening (iris and lashes squeezed by the lid
    warp, or a frame of glasses the warp dragged down): OpenCV inpainting from around it."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    for ring in (RIGHT_EYE_RING, LEFT_EYE_RING):
        cv2.fillPoly(mask, [landmarks[list(ring), :2].round().astype(np.int32)], 255)
    eye_width = float(
        np.linalg.norm(landmarks[RIGHT_EYE_RING[0], :2] - landmarks[RIGHT_EYE_RING[8], :2])
    )
    grow = max(1, int(eye_width * 0.1))
    mask = cv2.dilate(mask, np.ones((grow, grow), np.uint8))
    return cv2.inpaint(rgb, mask, 5, cv2.INPAINT_TELEA)


def face_mask(shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """A soft 0..1 mask of the face (the mesh's outline, edges blurred): the part of the
    portrait the simulated challenge light reaches from near (device.hw.camera.lighting)."""
    mask = np.zeros(shape[:2], np.float32)
    hull = cv2.convexHull(landmarks[:, :2].round().astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, shape[1] / 100))
