"""How far could any method go? An observer told each vessel exactly, on the model's chips.

The heading model has to find a vessel and its wake, of unknown size, speed and contrast, in
clutter. This script gives the same chips to an *oracle observer* told everything but the
heading: what the vessel (hull and wake) adds to this chip, exactly as drawn (the chip minus the
same chip drawn without the vessel, on the pixels the vessel covers: after cloud, path radiance and
contrast stretch), and the hull centre it turns about. It turns that template to every heading (a
2° grid, offset from the truth by a random fraction of a step so that the true heading gains nothing
from interpolation), correlates it with the centre 64 px of the chip (what the model sees) as a
matched filter whitened by the clutter's cross-band power spectrum, and answers the best heading.

Two variants: the clutter spectrum estimated from the chip itself (twice: as it is, then with the
first answer's vessel taken out, so that a strong vessel does not whiten itself away), or taken
from the chip drawn without the vessel (the observer then knows the clutter's statistics, which no
user does). It always answers (never flags a wake as ambiguous), so "within 10°" counts every wake.
It is linear and takes the clutter as stationary, so it is a strong reference, not a proven bound;
but it knows the nuisance parameters (length, speed, arm angle, contrast, position) that the model
must infer.

Usage::

    python benchmarks/heading_ceiling.py [--count 1000] [--train-ranges] [--weights W.pt] [--save errors.npz]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from scipy import ndimage

from models.calibrate import HELDOUT_SEED
from models.inference import load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import (
    BAND_NAMES, CLEAR_WAKE_SNR, HELDOUT_RANGES, TRAIN_RANGES, VISIBLE_WAKE_SNR, ChipRanges, draw_chip,
)

logger = logging.getLogger(__name__)


def _rotate_about(dx: np.ndarray, dy: np.ndarray, angle_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate offsets ``(dx, dy)`` (x right, y down) by ``angle_deg`` clockwise on screen; broadcasts."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return dx * c - dy * s, dx * s + dy * c


def clutter_cross_spectrum(z: np.ndarray, smooth: int = 5, ridge: float = 0.05) -> np.ndarray:
    """Smoothed cross-band power spectrum ``(H, W, bands, bands)`` of clutter ``z`` ``(bands, H, W)``.

    The periodogram ``Z(f) Z(f)^H`` is averaged over ``smooth x smooth`` neighbouring frequencies
    (wrapping), and ``ridge`` times its mean diagonal is added so that it can be inverted.
    """
    bands, h, w = z.shape
    spec = np.fft.fft2(z, axes=(-2, -1))
    cross = np.einsum("bij,cij->ijbc", spec, np.conj(spec)) / (h * w)
    cross = ndimage.uniform_filter(cross.real, size=(smooth, smooth, 1, 1), mode="wrap") + 1j * ndimage.uniform_filter(
        cross.imag, size=(smooth, smooth, 1, 1), mode="wrap")
    floor = ridge * np.real(np.trace(cross, axis1=-2, axis2=-1)).mean() / bands
    return cross + floor * np.eye(bands)[None, None]


def rotated_templates(
    signal: np.ndarray, centre_px: tuple[float, float], offsets_deg: np.ndarray, window: tuple[slice, slice],
) -> np.ndarray:
    """``signal`` ``(bands, H, W)`` turned about ``centre_px`` by each offset (clockwise), on ``window``.

    Returns ``(K, bands, h, w)``: the template at heading truth + d samples the drawn signal at the
    point rotated back by d (bilinear, zero outside the chip).
    """
    rows0, cols0 = window
    yy, xx = np.mgrid[rows0, cols0].astype(np.float64) + 0.5
    sx, sy = _rotate_about((xx - centre_px[0])[None], (yy - centre_px[1])[None], -np.asarray(offsets_deg)[:, None, None])
    coords = np.stack([(sy + centre_px[1] - 0.5).ravel(), (sx + centre_px[0] - 0.5).ravel()])
    return np.stack([
        ndimage.map_coordinates(band.astype(np.float64), coords, order=1, cval=0.0).reshape(sx.shape) for band in signal
    ], axis=1)


def _whitened_scores(z: np.ndarray, templates: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Matched-filter z-scores of each template ``(K, bands, h, w)`` in ``z`` under clutter spectrum ``cross``."""
    inverse = np.linalg.inv(cross)
    t_spec = np.fft.fft2(templates, axes=(-2, -1))
    filtered = np.einsum("ijbc,cij->bij", inverse, np.fft.fft2(z, axes=(-2, -1)))
    score = np.real(np.einsum("kbij,bij->k", np.conj(t_spec), filtered))
    energy = np.real(np.einsum("kbij,ijbc,kcij->k", np.conj(t_spec), inverse, t_spec, optimize=True))
    return np.where(energy > 0, score / np.sqrt(np.maximum(energy, 1e-30)), -np.inf)


def oracle_heading_deg(
    data: np.ndarray, signal: np.ndarray, centre_px: tuple[float, float], heading_grid_deg: float,
    *, clutter: np.ndarray | None = None, window_px: int = 64, step_deg: float = 2.0, rng: np.random.Generator,
) -> float:
    """Heading (degrees clockwise from grid up) a whitened matched filter picks when it knows the vessel exactly.

    Parameters
    ----------
    data : numpy.ndarray
        ``(bands, H, W)`` the chip.
    signal : numpy.ndarray
        ``(bands, H, W)`` what the vessel (hull and wake) adds to this chip, zero elsewhere, drawn at
        the true heading.
    centre_px : tuple of float
        ``(x, y)`` the hull centre, pixels (pixel centres at +0.5), the point the vessel turns about.
    heading_grid_deg : float
        The true heading; the candidates are offsets from it (``step_deg`` grid, random phase).
    clutter : numpy.ndarray, optional
        ``(bands, H, W)`` the chip without the vessel, to take the clutter spectrum from (the observer
        then knows the clutter's statistics). By default the spectrum comes from the chip itself,
        twice: once as it is, then with the best first answer's vessel taken out (a strong vessel
        would otherwise dominate its own clutter estimate and be whitened away).
    window_px : int
        Edge of the centre window the observer sees, pixels (the model's crop).
    rng : numpy.random.Generator
        Draws the phase of the candidate grid.
    """
    bands, h, w = data.shape
    r0, c0 = (h - window_px) // 2, (w - window_px) // 2
    window = (slice(r0, r0 + window_px), slice(c0, c0 + window_px))
    obs = data[(slice(None), *window)].astype(np.float64)
    median = np.median(obs, axis=(1, 2), keepdims=True)
    sigma = 1.4826 * np.median(np.abs(obs - median), axis=(1, 2), keepdims=True) + 1e-6
    z = (obs - median) / sigma
    offsets = rng.uniform(0.0, step_deg) + np.arange(0.0, 360.0, step_deg)
    templates = rotated_templates(signal, centre_px, offsets, window) / sigma[None]
    if clutter is not None:
        free = clutter[(slice(None), *window)].astype(np.float64)
        score = _whitened_scores(z, templates, clutter_cross_spectrum((free - np.median(free, axis=(1, 2), keepdims=True)) / sigma))
    else:
        score = _whitened_scores(z, templates, clutter_cross_spectrum(z))
        score = _whitened_scores(z, templates, clutter_cross_spectrum(z - templates[int(np.argmax(score))]))
    return float(np.mod(heading_grid_deg + offsets[int(np.argmax(score))], 360.0))


def draw_with_vessels(seed: int, count: int, ranges: ChipRanges, size: int) -> dict[str, np.ndarray]:
    """The chips :func:`models.wake_chips.draw_chips` draws for ``seed`` (identical), each with its vessel kept."""
    children = np.random.SeedSequence(seed).spawn(count)
    chips = [draw_chip(np.random.default_rng(c), ranges, size, keep_vessel_signal=True) for c in children]
    return {
        "data": np.stack([c.data for c in chips]),
        "vessel_signal": np.stack([c.extras["vessel_signal"] for c in chips]),
        "vessel_free": np.stack([c.extras["vessel_free"] for c in chips]),
        "centre_px": np.array([c.extras["centre_px"] for c in chips], dtype=np.float64),
        "visible": np.array([c.visible for c in chips], dtype=bool),
        "heading_grid_deg": np.array([c.heading_grid_deg for c in chips]),
        "length_m": np.array([c.length_m for c in chips]),
        "wake_snr": np.array([c.extras["wake_snr"] for c in chips]),
        "speed_kn": np.array([c.speed_kn for c in chips]),
        "glint": np.array([c.extras["glint"] for c in chips]),
        "cloud": np.array([c.extras["cloud"] for c in chips]),
        "stretched": np.array([c.extras["stretched"] for c in chips], dtype=bool),
        "l1c": np.array([c.extras["level"] == "L1C" for c in chips], dtype=bool),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--chip-size", type=int, default=128)
    parser.add_argument("--train-ranges", action="store_true", help="Use the training ranges instead of the held-out ones.")
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED)
    parser.add_argument("--save", default=None, metavar="NPZ", help="Also save every chip's errors (degrees) here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    started = time.perf_counter()
    ranges = TRAIN_RANGES if args.train_ranges else HELDOUT_RANGES
    chips = draw_with_vessels(args.seed, args.count, ranges, args.chip_size)
    wake = chips["visible"][:, 1]
    truth = chips["heading_grid_deg"]
    model = load_heading_model(args.weights)
    pred = predict_keypoints(model, chips["data"], BAND_NAMES)
    model_err = angular_error_deg(pred.heading_grid_deg, truth)
    # variant -> is the clutter spectrum taken from the chip drawn without the vessel?
    variants = {"vessel, clutter from the chip": False, "vessel, clutter known": True}
    oracle_err = {}
    for variant, knows_clutter in variants.items():
        rng = np.random.default_rng(args.seed + 1)
        est = np.full(args.count, np.nan)
        for i in np.flatnonzero(wake):
            est[i] = oracle_heading_deg(
                chips["data"][i], chips["vessel_signal"][i], tuple(chips["centre_px"][i]), truth[i],
                clutter=chips["vessel_free"][i] if knows_clutter else None, rng=rng,
            )
        oracle_err[variant] = angular_error_deg(est, truth)
        logger.info("%s: %.1f%% of wakes within 10°", variant, 100 * np.mean(oracle_err[variant][wake] <= 10))
    snr, small = chips["wake_snr"], chips["length_m"] < 25.0
    subsets = {
        "all with wake": wake, "vessels < 25 m": wake & small, "vessels >= 25 m": wake & ~small,
        f"wake SNR < {VISIBLE_WAKE_SNR:g}": wake & (snr < VISIBLE_WAKE_SNR),
        f"wake SNR {VISIBLE_WAKE_SNR:g}-10": wake & (snr >= VISIBLE_WAKE_SNR) & (snr < 10),
        f"wake SNR 10-{CLEAR_WAKE_SNR:g}": wake & (snr >= 10) & (snr < CLEAR_WAKE_SNR),
        f"wake SNR >= {CLEAR_WAKE_SNR:g}": wake & (snr >= CLEAR_WAKE_SNR),
    }

    def pct(err: np.ndarray, mask: np.ndarray) -> str:
        return f"{100 * np.mean(err[mask] <= 10.0):.1f}%" if mask.any() else "—"

    name = "TRAIN" if args.train_ranges else "HELDOUT"
    print(f"{args.count} chips of {args.chip_size} px, seed {args.seed}, {name} ranges "
          f"({time.perf_counter() - started:.0f} s); within 10° of the true heading, a missed wake counts as a miss")
    print("| subset | wakes | vesselwatch B0 (default) | oracle, clutter from the chip | oracle, clutter spectrum known "
          "| model right, oracle (chip) wrong | oracle (chip) right, model wrong |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    chip_err, known_err = oracle_err["vessel, clutter from the chip"], oracle_err["vessel, clutter known"]
    model_right, oracle_right = model_err <= 10.0, chip_err <= 10.0
    for subset, mask in subsets.items():
        print(f"| {subset} | {int(mask.sum())} | {pct(model_err, mask)} | {pct(chip_err, mask)} | "
              f"{pct(known_err, mask)} | {int(np.sum(mask & model_right & ~oracle_right))} | "
              f"{int(np.sum(mask & oracle_right & ~model_right))} |")
    if args.save is not None:
        np.savez(args.save, model_err=model_err, oracle_chip_err=chip_err, oracle_known_err=known_err,
                 model_ambiguous=pred.ambiguous, **{k: chips[k] for k in ("visible", "wake_snr", "length_m", "speed_kn",
                 "glint", "cloud", "stretched", "l1c", "heading_grid_deg")})


if __name__ == "__main__":
    main()
