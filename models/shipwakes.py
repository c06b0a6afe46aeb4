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

from vesselwatch.errors import InputError, ProductError

__all__ = ["ShipWakesSample", "load_shipwakes", "tooltips_to_keypoints"]

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
    for json_path in sorted(annotations.glob("*.json")):
        png = images / f"{json_path.stem}.png"
        if not png.exists():
            continue
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
