"""Headings and their accuracy (numpy): the heading two keypoints make, angular error, within-10° rate,
180° flips, ±2σ coverage."""

from __future__ import annotations

import numpy as np

__all__ = ["FLIP_THRESHOLD_DEG", "angular_error_deg", "keypoint_heading_deg", "summarize_errors"]

#: An error at least this large counts as a 180° flip (the estimate points within 30° of backwards).
FLIP_THRESHOLD_DEG = 150.0


def keypoint_heading_deg(keypoints: np.ndarray) -> np.ndarray:
    """Grid heading, degrees clockwise from grid up in [0, 360), from the wake end to the hull.

    ``keypoints`` is ``(..., >= 2, 2)`` ``(x, y)`` with ``y`` down (rows), hull first and wake end
    second, in any frame that scales both axes alike (chip pixels, or the network's -1..1). NaN
    where either point is missing.

    Examples
    --------
    >>> keypoint_heading_deg(np.array([[[5.0, 1.0], [5.0, 9.0]], [[9.0, 5.0], [1.0, 5.0]]])).tolist()
    [0.0, 90.0]
    """
    d = np.asarray(keypoints, dtype=np.float64)
    d = d[..., 0, :] - d[..., 1, :]
    return np.mod(np.degrees(np.arctan2(d[..., 0], -d[..., 1])), 360.0)


def angular_error_deg(estimate_deg: np.ndarray, truth_deg: np.ndarray) -> np.ndarray:
    """Absolute difference of two bearings, degrees in [0, 180] (NaN propagates).

    Examples
    --------
    >>> angular_error_deg(np.array([359.0, 10.0]), np.array([1.0, 190.0])).tolist()
    [2.0, 180.0]
    """
    diff = np.mod(np.asarray(estimate_deg, dtype=np.float64) - np.asarray(truth_deg, dtype=np.float64), 360.0)
    return np.minimum(diff, 360.0 - diff)


def summarize_errors(errors_deg: np.ndarray, sigma_deg: np.ndarray | None = None) -> dict[str, float]:
    """Summary of angular errors: count, mean, median, % within 10°, % flips, % within ±2σ.

    NaN errors (no estimate) count as misses for the within-10° rate and are excluded from the
    mean and median.
    """
    errors = np.asarray(errors_deg, dtype=np.float64)
    n = errors.size
    finite = errors[np.isfinite(errors)]
    out = {
        "count": float(n),
        "mean_deg": float(finite.mean()) if finite.size else float("nan"),
        "median_deg": float(np.median(finite)) if finite.size else float("nan"),
        "within_10_pct": float(100.0 * np.count_nonzero(finite <= 10.0) / n) if n else float("nan"),
        "flip_pct": float(100.0 * np.count_nonzero(finite >= FLIP_THRESHOLD_DEG) / n) if n else float("nan"),
        "no_estimate_pct": float(100.0 * (n - finite.size) / n) if n else float("nan"),
    }
    if sigma_deg is not None:
        sigma = np.asarray(sigma_deg, dtype=np.float64)
        ok = np.isfinite(errors) & np.isfinite(sigma)
        out["within_2sigma_pct"] = float(100.0 * np.count_nonzero(errors[ok] <= 2.0 * sigma[ok]) / max(ok.sum(), 1))
    return out
