"""dlib's own face pipeline on LFW images: HOG detector, 5-point shape, aligned chip, descriptor.

Used for calibration (pairsDevTrain people) and parity (pairsDevTest people). Images are
read from ../shared/data and never copied; chips live only in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import LFW_DIR, dlib_model

CHIP_SIZE = 150
CHIP_PADDING = 0.25


def pair_images(pairs_file: Path) -> list[str]:
    """Image paths (relative to lfw-view1/images) named by an LFW pairs file, in file order."""
    names: list[str] = []
    for line in pairs_file.read_text().splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 3:
            people = [(fields[0], fields[1]), (fields[0], fields[2])]
        elif len(fields) == 4:
            people = [(fields[0], fields[1]), (fields[2], fields[3])]
        else:
            continue
        for name, number in people:
            names.append(f"{name}/{name}_{int(number):04d}.jpg")
    return list(dict.fromkeys(names))


def people_of(images: list[str]) -> set[str]:
    return {image.split("/")[0] for image in images}


@dataclass
class DlibFace:
    image: str  # relative to lfw-view1/images
    points: np.ndarray  # (5, 2) dlib shape_predictor_5 points, image pixels
    chip: np.ndarray  # (150, 150, 3) uint8 RGB, dlib.get_face_chip
    chip_transform: np.ndarray  # (2, 3): chip pixel (x, y, 1) -> image pixel
    descriptor: np.ndarray  # (128,) dlib compute_face_descriptor (unnormalised)


class DlibPipeline:
    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))
        self.encoder = dlib.face_recognition_model_v1(
            str(dlib_model("dlib_face_recognition_resnet_model_v1.dat"))
        )

    def face(self, image_dir: Path, image: str) -> DlibFace | None:
        """The face nearest the image centre (LFW crops are centred), or None."""
        rgb = self.dlib.load_rgb_image(str(image_dir / image))
        boxes = self.detector(rgb, 1)
        if not boxes:
            return None
        centre = np.array([rgb.shape[1], rgb.shape[0]]) / 2

        def distance(box) -> float:
            return float(np.hypot(*(np.array([box.center().x, box.center().y]) - centre)))

        box = min(boxes, key=distance)
        shape = self.shapes(rgb, box)
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        chip = self.dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        details = self.dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        descriptor = np.array(self.encoder.compute_face_descriptor(rgb, shape), np.float32)
        return DlibFace(image, points, chip, chip_to_image(details), descriptor)

    def faces(self, images: list[str], limit: int) -> Iterator[DlibFace]:
        image_dir = LFW_DIR / "images"
        found = 0
        for image in images:
            if found >= limit:
                return
            face = self.face(image_dir, image)
            if face is not None:
                found += 1
                yield face


def chip_to_image(details) -> np.ndarray:
    """dlib chip_details -> 2x3 affine from chip pixels to image pixels.

    dlib maps the chip's corners onto the rect's corners rotated by `angle` about the
    rect centre (get_mapping_to_chip); rect corners are pixel centres, so chip pixel
    (cols-1, rows-1) lands on the bottom-right corner.
    """
    rect = details.rect
    left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    scale_x = (right - left) / (details.cols - 1)
    scale_y = (bottom - top) / (details.rows - 1)
    linear = rotation @ np.diag([scale_x, scale_y])
    # chip (0, 0) -> rotated top-left corner
    origin = rotation @ (np.array([left, top]) - centre) + centre
    return np.hstack([linear, origin[:, None]])
