"""Alignment to the embedders' chips, from the face mesh the pipeline already has.

- dlib (`chip_matrix`): dlib's get_face_chip geometry, reproduced exactly. dlib maps its
  5-point shape (both corners of each eye, the bottom of the nose) onto a mean-face
  template with a least-squares similarity transform and samples the chip bilinearly.
  We predict those 5 points from the face mesh (see mesh_to_dlib5.py), then apply the
  same transform, so the int8 ResNet sees the chips it was trained on. This 150 px chip
  is also what the quality gate measures (sharpness, brightness), whatever the embedder.
- ArcFace (`arcface_matrix`): the standard 112x112 five-point template (eye centres, nose
  tip, mouth corners) that MobileFaceNet and the InsightFace family were trained on; the
  five points are read off the mesh (`arcface5_from_mesh`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from device.vision.mesh_to_dlib5 import DLIB5_FROM_MESH

# dlib get_face_chip_details(): template for shape_predictor_5 parts 0..4, in [0,1]
DLIB5_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping src (N, 2) onto dst (N, 2), as a 2x3 matrix (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mean_s, mean_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mean_s, dst - mean_d
    var_s = (s**2).sum() / len(src)
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    flip = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[1, 1] = -1
    rot = u @ flip @ vt
    scale = np.trace(np.diag(sig) @ flip) / var_s if var_s > 0 else 1.0
    m = scale * rot
    t = mean_d - m @ mean_s
    return np.hstack([m, t[:, None]])


def chip_matrix(points5: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """2x3 affine, frame pixels -> chip pixels, exactly as dlib's get_face_chip_details +
    extract_image_chip: the chip's corners (0,0), (size-1,0), (0,size-1) are the corners
    of a rect of side size*scale - 1 (dlib's centered_drect) centred on the image of the
    chip centre. Checked against dlib.get_face_chip: mean |difference| 0.5 grey levels."""
    template = (padding + DLIB5_TEMPLATE) / (2 * padding + 1) * size
    to_image = similarity_transform(template, points5)
    px, py = to_image[:, 0]
    angle = math.atan2(py, px)
    scale = math.hypot(px, py)
    centre = to_image[:, :2] @ np.array([size / 2, size / 2]) + to_image[:, 2]
    half = (size * scale - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    corners = np.array([[-half, -half], [half, -half], [-half, half]]) @ rot.T + centre
    target = np.array([[0, 0], [size - 1, 0], [0, size - 1]], np.float64)
    return cv2.getAffineTransform(corners.astype(np.float32), target.astype(np.float32))


def extract_chip(rgb: np.ndarray, matrix: np.ndarray, size: int = 150) -> np.ndarray:
    """Sample the chip bilinearly. When the face is much larger than the chip, halve the
    frame first (dlib does the same with an image pyramid) to avoid aliasing."""
    m = matrix.astype(np.float64).copy()
    image = rgb
    while math.hypot(m[0, 0], m[0, 1]) < 0.5 and min(image.shape[:2]) > 2 * size:
        image = cv2.pyrDown(image)
        m[:, :2] *= 2.0
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


# InsightFace's 112x112 ArcFace template (arcface_torch / insightface.utils.face_align):
# eye centres (image left, image right), nose tip, mouth corners (image left, right)
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float64,
)
# MediaPipe face-mesh indices per ArcFace point (averaged): each eye's lid contour ring
# (its centre is the eye centre), the nose tip, the mouth corners
ARCFACE_FROM_MESH: tuple[tuple[int, ...], ...] = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    (1,),
    (61,),
    (291,),
)


def arcface5_from_mesh(points: np.ndarray) -> np.ndarray:
    """The ArcFace template's five points (5, 2) in frame pixels from the 468-point mesh.
    Means of mesh points commute with any similarity transform, like dlib5_from_mesh."""
    xy = np.asarray(points, np.float64)[:, :2]
    return np.stack([xy[list(indices)].mean(axis=0) for indices in ARCFACE_FROM_MESH])


def arcface_matrix(points5: np.ndarray, size: int = 112) -> np.ndarray:
    """2x3 affine, frame pixels -> chip pixels: the least-squares similarity taking the five
    ArcFace points onto the template (scaled to `size`; 112 is the template's own)."""
    return similarity_transform(points5, ARCFACE_TEMPLATE_112 * (size / 112.0))


def dlib5_from_mesh(points: np.ndarray) -> np.ndarray:
    """dlib shape_predictor_5's points (5, 2) predicted from the 468-point mesh: each is a
    fixed affine combination (weights sum to 1) of a few mesh points, fitted on LFW
    DevTrain against dlib's own predictor. Combinations of points commute with any
    similarity transform, so the fit holds at every position, scale and roll."""
    xy = np.asarray(points, np.float64)[:, :2]
    out = np.empty((5, 2), np.float64)
    for part, (indices, weights) in enumerate(_DLIB5_WEIGHTS):
        out[part] = weights @ xy[indices]
    return out


# the generated weights are rounded to 6 decimals: renormalise so each part's weights
# sum to exactly 1 and the prediction moves exactly with the face
_DLIB5_WEIGHTS = tuple(
    (list(indices), np.asarray(weights, np.float64) / float(np.sum(weights)))
    for indices, weights in DLIB5_FROM_MESH
)
