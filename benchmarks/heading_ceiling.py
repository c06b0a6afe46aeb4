"""How far could any method go on the held-out set? An observer that knows each wake exactly.

The heading model has to find a wake it has never seen, of unknown size, speed and contrast, in
clutter. This script gives the same chips to an *oracle observer* that is told everything but the
heading: the wake exactly as it was drawn into this chip (the chip minus its wake-free twin, on the
pixels the wake covers: after cloud, path radiance and contrast stretch) and the point it turns
about (the hull centre). It tries the wake at every heading (a 2° grid, offset from the truth by a
random fraction of a step so that the true heading gets no interpolation advantage), correlates
it with the chip as a matched filter, and answers the best. It sees what the model sees: the
centre 64 px of the chip, with a disc of half a hull length (+1 px) around the hull centre left out
(a wake swung round across the bow would otherwise score on the bright hull).

Two variants of the filter: per-band white clutter (the chip's robust spread per band), and
spectrally whitened (the clutter's power spectrum estimated from the chip itself, per band, so swell
and glint texture are suppressed before correlating). Neither uses the clutter's cross-band
covariance, so this is a strong reference, not a proven bound; but it knows the nuisance parameters
(length, speed, arm angle, contrast) that the model must infer, which is worth far more.

It always answers (never flags a wake as ambiguous), so "within 10°" counts every wake. If the
oracle stays below a target on some band of wake SNR, no method that has to infer the wake can be
expected to reach it there.

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


def oracle_heading_deg(
    data: np.ndarray, wake_signal: np.ndarray, centre_px: tuple[float, float], heading_grid_deg: float,
    hull_radius_px: float, *, clutter: np.ndarray | None = None, window_px: int = 64, step_deg: float = 2.0,
    rng: np.random.Generator,
) -> float:
    """Heading (degrees clockwise from grid up) a whitened matched filter picks when it knows the wake exactly.

    Parameters
    ----------
    data : numpy.ndarray
        ``(bands, H, W)`` the chip.
    wake_signal : numpy.ndarray
        ``(bands, H, W)`` the wake as drawn into this chip, zero off the wake (drawn at the true heading).
    centre_px : tuple of float
        ``(x, y)`` the hull centre, pixels (pixel centres at +0.5), the point the wake turns about.
    heading_grid_deg : float
        The true heading the wake was drawn at; the candidates are offsets from it (2° grid, random phase).
    hull_radius_px : float
        Radius of the disc around the hull centre left out of the correlation, pixels.
    clutter : numpy.ndarray, optional
        ``(bands, H, W)`` a wake-free chip to estimate the clutter spectrum from (the chip's twin:
        the observer then knows the clutter's statistics); by default the chip itself.
    window_px : int
        Edge of the centre window the observer sees, pixels (the model's crop).
    rng : numpy.random.Generator
        Draws the phase of the candidate grid.
    """
    bands, h, w = data.shape
    r0, c0 = (h - window_px) // 2, (w - window_px) // 2
    yy, xx = np.mgrid[r0:r0 + window_px, c0:c0 + window_px].astype(np.float64) + 0.5
    dx, dy = xx - centre_px[0], yy - centre_px[1]
    keep = dx**2 + dy**2 > hull_radius_px**2

    def standardise(chip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        window = chip[:, r0:r0 + window_px, c0:c0 + window_px].astype(np.float64)
        median = np.array([np.median(b[keep]) for b in window])
        window = np.where(keep, window - median[:, None, None], 0.0)
        return window, np.array([1.4826 * np.median(np.abs(b[keep])) for b in window]) + 1e-6

    obs, sigma = standardise(data)
    z = obs / sigma[:, None, None]
    if clutter is None:
        cross = clutter_cross_spectrum(z)
    else:
        twin, _ = standardise(clutter)
        cross = clutter_cross_spectrum(twin / sigma[:, None, None])
    inverse = np.linalg.inv(cross)  # (H, W, bands, bands)

    offsets = rng.uniform(0.0, step_deg) + np.arange(0.0, 360.0, step_deg)
    # The template at heading truth + d samples the drawn wake at the point rotated back by d.
    sx, sy = _rotate_about(dx[None], dy[None], -offsets[:, None, None])
    rows, cols = sy + centre_px[1] - 0.5, sx + centre_px[0] - 0.5
    coords = np.stack([rows.ravel(), cols.ravel()])
    templates = np.stack([
        ndimage.map_coordinates(wake_signal[b].astype(np.float64), coords, order=1, cval=0.0).reshape(rows.shape)
        for b in range(bands)
    ], axis=1)  # (K, bands, window, window)
    templates = np.where(keep, templates / sigma[None, :, None, None], 0.0)
    t_spec = np.fft.fft2(templates, axes=(-2, -1))
    filtered_obs = np.einsum("ijbc,cij->bij", inverse, np.fft.fft2(z, axes=(-2, -1)))
    score = np.real(np.einsum("kbij,bij->k", np.conj(t_spec), filtered_obs))
    energy = np.real(np.einsum("kbij,ijbc,kcij->k", np.conj(t_spec), inverse, t_spec, optimize=True))
    score = np.where(energy > 0, score / np.sqrt(np.maximum(energy, 1e-30)), -np.inf)
    return float(np.mod(heading_grid_deg + offsets[int(np.argmax(score))], 360.0))


def draw_with_wakes(seed: int, count: int, ranges: ChipRanges, size: int) -> dict[str, np.ndarray]:
    """The chips :func:`models.wake_chips.draw_chips` draws for ``seed`` (identical), with each wake kept."""
    children = np.random.SeedSequence(seed).spawn(count)
    chips = [draw_chip(np.random.default_rng(c), ranges, size, keep_wake_signal=True) for c in children]
    return {
        "data": np.stack([c.data for c in chips]),
        "wake_signal": np.stack([c.extras["wake_signal"] for c in chips]),
        "wake_free": np.stack([c.extras["wake_free"] for c in chips]),
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
    chips = draw_with_wakes(args.seed, args.count, ranges, args.chip_size)
    wake = chips["visible"][:, 1]
    truth = chips["heading_grid_deg"]
    model = load_heading_model(args.weights)
    pred = predict_keypoints(model, chips["data"], BAND_NAMES)
    model_err = angular_error_deg(pred.heading_grid_deg, truth)
    oracle_err = {}
    for knows_clutter in (False, True):
        rng = np.random.default_rng(args.seed + 1)
        est = np.full(args.count, np.nan)
        for i in np.flatnonzero(wake):
            est[i] = oracle_heading_deg(
                chips["data"][i], chips["wake_signal"][i], tuple(chips["centre_px"][i]), truth[i],
                chips["length_m"][i] / 20.0 + 1.0, clutter=chips["wake_free"][i] if knows_clutter else None, rng=rng,
            )
        oracle_err[knows_clutter] = angular_error_deg(est, truth)
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
    print("| subset | wakes | vesselwatch B0 (default) | oracle, clutter from the chip | oracle, clutter known "
          "| model right, oracle (chip) wrong | oracle (chip) right, model wrong |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    model_right, oracle_right = model_err <= 10.0, oracle_err[False] <= 10.0
    for subset, mask in subsets.items():
        print(f"| {subset} | {int(mask.sum())} | {pct(model_err, mask)} | {pct(oracle_err[False], mask)} | "
              f"{pct(oracle_err[True], mask)} | {int(np.sum(mask & model_right & ~oracle_right))} | "
              f"{int(np.sum(mask & oracle_right & ~model_right))} |")
    if args.save is not None:
        np.savez(args.save, model_err=model_err, oracle_chip_err=oracle_err[False], oracle_known_err=oracle_err[True],
                 model_ambiguous=pred.ambiguous, **{k: chips[k] for k in ("visible", "wake_snr", "length_m", "speed_kn",
                 "glint", "cloud", "stretched", "l1c", "heading_grid_deg")})


if __name__ == "__main__":
    main()
