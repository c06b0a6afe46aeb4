"""Calibration of the heading uncertainty and of the wake threshold, and evaluation on synthetic sets.

The network's von Mises sigma is only a relative confidence. :func:`calibrate` finds the factor
``s`` (:func:`uncertainty_scale_for_coverage`) such that the truth lies within ``±2 s sigma`` for a chosen share (default 95%) of a
calibration set drawn with the *training* ranges and a seed used nowhere else; the held-out test
set (other seeds, other ranges) then measures whether the ≥ 90% coverage target really holds.

A faint wake's sigma understates its error more than a clear one's, so the factor is fitted per
band of wake probability (:func:`uncertainty_scales_by_wake`, bands from 0.9 and 0.99 up).

The wake probability is only a score too. :func:`calibrate` also picks the lowest threshold at
which the headings the model still reports on the calibration set (chips with and without a wake)
are within 10° of the truth for a chosen share (default 95%; :func:`wake_threshold_for_precision`):
below it, a chip gets no heading and ``ambiguous=True``.

:func:`calibrate_on_chips` fits the same on any labelled chips, e.g. real ones in the ShipWakes
format (``vesselwatch calibrate-heading WEIGHTS --shipwakes DIR``). A set where every chip has a
wake cannot fit the threshold (it would sink to its floor: no wakeless chip is there to be reported
wrongly), so the model's threshold is kept and only the sigma factors are refitted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from models.inference import HeadingModel, predict_keypoints
from models.metrics import angular_error_deg, summarize_errors
from models.wake_chips import BAND_NAMES, TRAIN_RANGES, ChipRanges, draw_chips

__all__ = [
    "CALIBRATION_SEED", "HELDOUT_SEED", "Calibration", "calibrate", "calibrate_on_chips", "evaluate_synthetic",
    "reported_precision",
    "uncertainty_scale_for_coverage", "uncertainty_scales_by_wake", "wake_threshold_for_precision",
]

logger = logging.getLogger(__name__)

#: Seeds reserved for calibration and for the held-out test set (training uses 0.. and validation
#: ``seed + 1_000_003``).
CALIBRATION_SEED = 7_000_001
HELDOUT_SEED = 9_000_017


def _predict_set(model: HeadingModel, data: np.ndarray, tta: bool,
                 band_names: tuple[str, ...] = BAND_NAMES) -> dict[str, np.ndarray]:
    pred = predict_keypoints(model, data, band_names, tta=tta)
    return {
        "heading": pred.heading_grid_deg,
        "sigma": pred.uncertainty_deg,
        "ambiguous": pred.ambiguous,
        "wake_probability": pred.visibility[:, 1],
    }


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` fits, stored in the weights' JSON.

    Attributes
    ----------
    uncertainty_scale : float
        Factor on the von Mises sigma for every chip with a wake (``PreprocessConfig.uncertainty_scale``).
    uncertainty_scale_bins : tuple of (float, float)
        Factors per band of wake probability for the chips that get a heading
        (``PreprocessConfig.uncertainty_scale_bins``).
    wake_probability_threshold : float
        Wake probability below which no heading is reported (``PreprocessConfig.wake_probability_threshold``).
    precision_pct : float
        Share of the calibration set's reported headings within 10° at that threshold, percent.
    count : int
        Chips in the calibration set.
    """

    uncertainty_scale: float
    uncertainty_scale_bins: tuple[tuple[float, float], ...]
    wake_probability_threshold: float
    precision_pct: float
    count: int


def uncertainty_scale_for_coverage(error_deg: np.ndarray, sigma_deg: np.ndarray, coverage: float = 0.95) -> float:
    """Factor ``s`` with ``|error| <= 2 s sigma`` for ``coverage`` of the finite pairs (1.0 when none).

    Parameters
    ----------
    error_deg, sigma_deg : numpy.ndarray
        Absolute angular errors and raw 1-sigma uncertainties, degrees, same shape.
    coverage : float
        Target share in (0, 1).
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage: expected a share in (0, 1), got {coverage}")
    ratio = np.asarray(error_deg, dtype=np.float64) / (2.0 * np.asarray(sigma_deg, dtype=np.float64))
    ratio = ratio[np.isfinite(ratio)]
    return float(np.quantile(ratio, coverage)) if ratio.size else 1.0


def uncertainty_scales_by_wake(
    error_deg: np.ndarray, sigma_deg: np.ndarray, wake_probability: np.ndarray, *,
    edges: tuple[float, ...] = (0.9, 0.99), coverage: float = 0.95, min_count: int = 50,
) -> tuple[tuple[float, float], ...]:
    """:func:`uncertainty_scale_for_coverage` per band of wake probability.

    The bands start at 0 and at each of ``edges``; a band with fewer than ``min_count`` finite
    pairs is merged into the one below it (the lowest into the one above). Returns
    ``((lowest probability, factor), ...)`` for ``PreprocessConfig.uncertainty_scale_bins``.
    """
    error = np.asarray(error_deg, dtype=np.float64)
    sigma = np.asarray(sigma_deg, dtype=np.float64)
    p = np.asarray(wake_probability, dtype=np.float64)
    usable = np.isfinite(error) & np.isfinite(sigma)

    def band_counts(starts: list[float]) -> list[int]:
        ends = [*starts[1:], np.inf]
        return [int(np.count_nonzero(usable & (p >= lo) & (p < hi))) for lo, hi in zip(starts, ends)]

    starts = [0.0, *sorted(edges)]
    while len(starts) > 1 and min(band_counts(starts)) < min_count:
        smallest = int(np.argmin(band_counts(starts)))
        del starts[max(smallest, 1)]  # merge into the band below (the lowest band absorbs the next)
    bins = []
    for lo, hi in zip(starts, [*starts[1:], np.inf]):
        inside = (p >= lo) & (p < hi)
        bins.append((float(lo), uncertainty_scale_for_coverage(error[inside], sigma[inside], coverage)))
    return tuple(bins)


def reported_precision(wake_probability: np.ndarray, correct: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Share of the chips with ``wake_probability >= t`` that are ``correct``, per threshold ``t`` (NaN: none).

    Parameters
    ----------
    wake_probability : numpy.ndarray
        ``(N,)`` predicted wake probabilities, 0..1.
    correct : numpy.ndarray
        ``(N,)`` bool: the chip has a wake and its heading is within 10° of the truth.
    thresholds : numpy.ndarray
        ``(T,)`` thresholds to evaluate.
    """
    p = np.asarray(wake_probability, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if p.shape != ok.shape:
        raise ValueError(f"correct: expected the shape of wake_probability {p.shape}, got {ok.shape}")
    order = np.argsort(p)
    p_sorted, ok_sorted = p[order], ok[order]
    # Chips at or above t: those from the first index whose probability is >= t.
    first = np.searchsorted(p_sorted, np.asarray(thresholds, dtype=np.float64), side="left")
    ok_from = np.concatenate([np.cumsum(ok_sorted[::-1])[::-1], [0]])
    reported = p.size - first
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(reported > 0, ok_from[first] / reported, np.nan)


def wake_threshold_for_precision(
    wake_probability: np.ndarray, correct: np.ndarray, precision: float = 0.95, *,
    lowest: float = 0.5, highest: float = 0.95, step: float = 0.01,
) -> tuple[float, float]:
    """Lowest threshold on a grid whose reported headings are ``correct`` for at least ``precision``.

    The grid runs from ``lowest`` (a chip more likely wakeless than not never gets a heading) to
    ``highest``; when no threshold reaches the target, ``highest`` is returned. Returns the
    threshold and the precision it reaches (0..1).
    """
    if not 0.0 < precision < 1.0:
        raise ValueError(f"precision: expected a share in (0, 1), got {precision}")
    if not 0.0 <= lowest <= highest < 1.0:
        raise ValueError(f"lowest, highest: expected 0 <= lowest <= highest < 1, got {lowest}, {highest}")
    grid = np.round(np.arange(lowest, highest + step / 2, step), 6)
    reached = reported_precision(wake_probability, correct, grid)
    hits = np.flatnonzero(reached >= precision)
    if not hits.size:
        logger.warning("no wake threshold up to %.2f reaches %.0f%% precision (%.1f%% there): using %.2f",
                       highest, 100 * precision, 100 * np.nan_to_num(reached[-1]), highest)
    index = int(hits[0]) if hits.size else grid.size - 1
    return float(grid[index]), float(reached[index])


def calibrate(
    model: HeadingModel, *, count: int = 4096, seed: int = CALIBRATION_SEED, coverage: float = 0.95,
    precision: float = 0.95, ranges: ChipRanges = TRAIN_RANGES, chip_size: int = 128,
) -> Calibration:
    """Fit the sigma scales and the wake threshold on one calibration set (training ranges, own seed).

    The chips are predicted raw (sigma unscaled, no threshold, no test-time augmentation). The
    overall factor covers ``coverage`` of the chips with a wake; the threshold is the lowest at which
    ``precision`` of the reported headings are within 10° (a chip without a wake that still gets a
    heading counts as wrong: its bow and stern cannot be told apart); the per-band factors of
    :func:`uncertainty_scales_by_wake` are fitted on the chips with a wake that clear the threshold
    (those that get a heading). The 95% quantile of a heavy-tailed error ratio needs many chips:
    fitted on 1,024 chips the overall factor of two trained models differed by 4% and 9% from the
    one fitted on 4,096, hence the default.
    """
    chips = draw_chips(seed, count, ranges, chip_size)
    return calibrate_on_chips(model, chips["data"], BAND_NAMES, chips["heading_grid_deg"], chips["visible"][:, 1],
                              coverage=coverage, precision=precision)


def calibrate_on_chips(
    model: HeadingModel, data: np.ndarray, band_names: tuple[str, ...], heading_grid_deg: np.ndarray,
    has_wake: np.ndarray, *, coverage: float = 0.95, precision: float = 0.95,
) -> Calibration:
    """:func:`calibrate` on given labelled chips (synthetic or real) instead of a drawn set.

    Parameters
    ----------
    data : numpy.ndarray
        ``(N, bands, H, W)`` chips, reflectance 0..1, bands ``band_names``.
    heading_grid_deg : numpy.ndarray
        ``(N,)`` true headings, degrees clockwise from grid up (ignored where ``has_wake`` is False).
    has_wake : numpy.ndarray
        ``(N,)`` bool: the chip shows a wake (a heading reported on one without counts as wrong).
        When every chip has one, the model's current wake threshold is kept (see the module docstring).

    Raises
    ------
    ValueError
        When the arrays disagree in length or no chip has a wake.
    """
    data = np.asarray(data)
    wake = np.asarray(has_wake, dtype=bool)
    truth = np.asarray(heading_grid_deg, dtype=np.float64)
    if not (data.shape[0] == wake.shape[0] == truth.shape[0]):
        raise ValueError(f"data, heading_grid_deg, has_wake: expected one entry per chip, got {data.shape[0]}, "
                         f"{truth.shape[0]}, {wake.shape[0]}")
    if not wake.any():
        raise ValueError("has_wake: no chip with a wake to calibrate on")
    previous = model.config
    model.config = previous.replace(uncertainty_scale=1.0, uncertainty_scale_bins=(), wake_probability_threshold=0.0)
    try:
        out = _predict_set(model, data, tta=False, band_names=tuple(band_names))
    finally:
        model.config = previous
    error = angular_error_deg(out["heading"], truth)
    scale = uncertainty_scale_for_coverage(error[wake], out["sigma"][wake], coverage)
    correct = wake & (error <= 10.0)
    if wake.all():
        # Without wakeless chips the precision cannot see the headings a threshold exists to withhold
        # (bow and stern of a chip without a wake); lowering it here would report them in production.
        threshold = previous.wake_probability_threshold
        reached = float(reported_precision(out["wake_probability"], correct, np.array([threshold]))[0])
        logger.info("every calibration chip has a wake: keeping the wake threshold %.2f (%.1f%% of these reported "
                    "headings within 10°), refitting only the sigma factors", threshold, 100 * reached)
    else:
        threshold, reached = wake_threshold_for_precision(out["wake_probability"], correct, precision)
    reported = wake & (out["wake_probability"] >= threshold)
    bins = uncertainty_scales_by_wake(error[reported], out["sigma"][reported], out["wake_probability"][reported],
                                      coverage=coverage)
    return Calibration(scale, bins, threshold, 100.0 * reached, int(wake.size))


def evaluate_synthetic(
    model: HeadingModel, *, count: int, seed: int, ranges: ChipRanges, chip_size: int = 128, tta: bool = False,
    small_vessel_m: float = 25.0,
) -> dict[str, dict[str, float]]:
    """Heading metrics on a synthetic set: all chips with wakes, vessels < ``small_vessel_m``, the rest.

    A chip whose wake the model misses (NaN heading) counts as a miss for the within-10° rate. Chips
    without a wake only score the ambiguity flag (``no_wake`` row: % flagged ambiguous).
    """
    chips = draw_chips(seed, count, ranges, chip_size)
    out = _predict_set(model, chips["data"], tta)
    wake = chips["visible"][:, 1]
    errors = angular_error_deg(out["heading"], chips["heading_grid_deg"])
    small = chips["length_m"] < small_vessel_m
    rows = {
        "all with wake": summarize_errors(errors[wake], out["sigma"][wake]),
        f"< {small_vessel_m:g} m": summarize_errors(errors[wake & small], out["sigma"][wake & small]),
        f">= {small_vessel_m:g} m": summarize_errors(errors[wake & ~small], out["sigma"][wake & ~small]),
    }
    for row, mask in zip(rows.values(), (wake, wake & small, wake & ~small), strict=True):
        row["ambiguous_pct"] = float(100.0 * out["ambiguous"][mask].mean()) if mask.any() else float("nan")
    no_wake = ~wake
    rows["no wake"] = {
        "count": float(no_wake.sum()),
        "ambiguous_pct": float(100.0 * out["ambiguous"][no_wake].mean()) if no_wake.any() else float("nan"),
    }
    return rows
