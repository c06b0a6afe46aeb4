"""Loader for the public ShipWakes keypoint format (Del Prete et al., IEEE GRSL 2023).

A dataset directory holds ``imgs/<name>.png`` and ``annotations/<name>.json``; each JSON has a
``"tooltips"`` list of ``{"x": ..., "y": ...}`` pixel points, 2-3 per image. We read them as: the
first point is the hull (wake apex), the second the far end of the turbulent wake, and a third (when
present) the end of a Kelvin arm, assigned to the left or right arm by which side of the direction
of travel it lies on. PNGs are RGB (or grey) 8-bit composites; they are returned as reflectance-like
0..1 planes named ``B04 B03 B02`` (the model fills the missing NIR from the visible mean).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.metrics import keypoint_heading_deg
from vesselwatch.errors import InputError, ProductError

__all__ = ["ShipWakesSample", "annotated_images", "crop_window", "hull_centred_chips", "load_shipwakes", "tooltips_to_keypoints"]

PNG_BAND_NAMES: tuple[str, ...] = ("B04", "B03", "B02")


@dataclass
class ShipWakesSample:
    """One annotated image: ``data (3, H, W)`` float32 0..1, ``keypoints (4, 2)`` pixel ``(x, y)``."""

    name: str
    data: np.ndarray
    keypoints: np.ndarray
    band_names: tuple[str, ...] = PNG_BAND_NAMES

    @property
    def visible(self) -> np.ndarray:
        """``(4,)`` bool: which keypoints are annotated."""
        return np.all(np.isfinite(self.keypoints), axis=-1)


def tooltips_to_keypoints(tooltips: list[dict], source: str | Path = "<tooltips>") -> np.ndarray:
    """Convert a ``"tooltips"`` list into a ``(4, 2)`` keypoint array (NaN where absent).

    Raises
    ------
    InputError
        When there are fewer than 2 or more than 3 points, or a point lacks numeric ``x``/``y``.
    """
    if not isinstance(tooltips, list) or not 2 <= len(tooltips) <= 3:
        count = len(tooltips) if isinstance(tooltips, list) else type(tooltips).__name__
        raise InputError(f"{source}: 'tooltips' must hold 2 or 3 points, got {count}")
    try:
        points = np.array([[float(p["x"]), float(p["y"])] for p in tooltips], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{source}: every tooltip needs numeric 'x' and 'y' ({exc})") from exc
    keypoints = np.full((4, 2), np.nan)
    keypoints[:2] = points[:2]
    if len(points) == 3:
        travel = points[0] - points[1]  # wake end -> hull
        rel = points[2] - points[0]
        # y grows downward, so cross < 0 means the point lies left of the direction of travel.
        cross = travel[0] * rel[1] - travel[1] * rel[0]
        keypoints[2 if cross < 0 else 3] = points[2]
    return keypoints


def annotated_images(root: str | Path) -> list[tuple[Path, Path]]:
    """``(annotation JSON, PNG)`` pairs of a ShipWakes-format directory, sorted by name; nothing is read.

    An annotation counts when ``imgs/`` holds a PNG of the same stem; ``[]`` when there are none or
    ``root`` lacks ``annotations/``.
    """
    root = Path(root)
    pairs = ((json_path, root / "imgs" / f"{json_path.stem}.png") for json_path in sorted((root / "annotations").glob("*.json")))
    return [(json_path, png) for json_path, png in pairs if png.exists()]


def load_shipwakes(root: str | Path) -> list[ShipWakesSample]:
    """Read every annotated image of a ShipWakes-format directory, sorted by name.

    Raises
    ------
    ProductError
        When ``root`` lacks ``imgs/`` or ``annotations/``, or an image cannot be decoded.
    InputError
        When an annotation is malformed (see :func:`tooltips_to_keypoints`).
    """
    root = Path(root)
    images, annotations = root / "imgs", root / "annotations"
    if not images.is_dir() or not annotations.is_dir():
        raise ProductError(root, "not a ShipWakes directory: expected imgs/ and annotations/")
    samples = []
    for json_path, png in annotated_images(root):
        try:
            doc = json.loads(json_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{json_path}: not valid JSON ({exc})") from exc
        if "tooltips" not in doc:
            raise InputError(f"{json_path}: missing 'tooltips'")
        keypoints = tooltips_to_keypoints(doc["tooltips"], json_path)
        try:
            with Image.open(png) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        except OSError as exc:
            raise ProductError(png, f"cannot decode PNG ({exc})") from exc
        samples.append(ShipWakesSample(json_path.stem, np.ascontiguousarray(rgb.transpose(2, 0, 1)), keypoints))
    return samples


def crop_window(data: np.ndarray, col0: int, row0: int, size: int) -> np.ndarray:
    """The ``(bands, size, size)`` window of ``data (bands, H, W)`` whose top-left pixel is ``(col0, row0)``.

    Parts beyond the image (up to ``size`` pixels) are filled by reflection.
    """
    padded = np.pad(data, ((0, 0), (size, size), (size, size)), mode="reflect")
    return padded[:, row0 + size : row0 + 2 * size, col0 + size : col0 + 2 * size]


def hull_centred_chips(samples: list[ShipWakesSample], size: int = 128) -> dict[str, np.ndarray]:
    """Cut a ``size`` px chip centred on each sample's hull, as the pipeline cuts one around a detection.

    Images smaller than the chip, or hulls near an edge, are reflect-padded (:func:`crop_window`,
    as ``train-heading --shipwakes`` crops them). Every sample must have
    the same band names (ShipWakes PNGs all read as ``B04 B03 B02``).

    Returns
    -------
    dict
        ``data`` ``(N, bands, size, size)`` float32 0..1, ``keypoints`` ``(N, 4, 2)`` chip pixels
        (NaN where not annotated), ``heading_grid_deg`` ``(N,)`` (wake end → hull, clockwise from
        the image's up), ``names`` ``(N,)`` and ``band_names`` (tuple).
    """
    if not samples:
        raise InputError("samples: no ShipWakes images to cut chips from")
    band_names = samples[0].band_names
    data = np.empty((len(samples), len(band_names), size, size), dtype=np.float32)
    keypoints = np.empty((len(samples), 4, 2))
    for i, sample in enumerate(samples):
        if sample.band_names != band_names:
            raise InputError(f"{sample.name}: bands {sample.band_names} differ from {band_names}")
        col0 = int(np.floor(sample.keypoints[0, 0])) - size // 2
        row0 = int(np.floor(sample.keypoints[0, 1])) - size // 2
        data[i] = crop_window(sample.data, col0, row0, size)
        keypoints[i] = sample.keypoints - np.array([col0, row0])
    return {
        "data": data, "keypoints": keypoints, "heading_grid_deg": keypoint_heading_deg(keypoints),
        "names": np.array([s.name for s in samples]), "band_names": band_names,
    }
