"""CLI commands: ``vesselwatch heading CHIP``, ``train-heading``, ``average-heading-weights`` and ``calibrate-heading``."""

from __future__ import annotations

import json
import logging
import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import typer

from vesselwatch.errors import InputError, ProductError, VesselwatchError

if TYPE_CHECKING:  # the CLI imports models (torch) only inside the commands that need it
    from models.wake_chips import ChipRanges

logger = logging.getLogger(__name__)

#: What reading a damaged or foreign training checkpoint (``last.pt``) raises: torch, pickle, a missing key.
_UNREADABLE_CHECKPOINT = (OSError, RuntimeError, ValueError, TypeError, KeyError, EOFError, pickle.UnpicklingError)

#: Picture formats ``--png`` can write, by suffix.
_PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def read_chip(path: Path):
    """Read a chip file (:func:`pipeline.chip_files.read_chip_file`) as a chip for ``estimate_headings``.

    Raises
    ------
    ProductError
        Naming the file and what is wrong with it.
    """
    from types import SimpleNamespace

    from affine import Affine

    from pipeline.chip_files import read_chip_file

    if not path.exists():
        raise ProductError(path, "chip file not found")
    try:
        chip = read_chip_file(path)
    except InputError as error:
        raise ProductError(path, str(error)) from error
    if chip.nodata_pixels:
        logger.warning("%s: %d nodata pixels filled with their band's median", path, chip.nodata_pixels)
    return SimpleNamespace(data=chip.data, band_names=chip.band_names, crs=chip.crs, grid_north_deg=chip.grid_north_deg,
                           transform=chip.transform if chip.georeferenced else Affine.identity(),
                           georeferenced=chip.georeferenced, pixel_m=chip.pixel_m, gcp_count=chip.gcp_count)


def network_shape(
    init_weights: Optional[Path], *, output_stride: Optional[int] = None, fine_channels: Optional[int] = None,
    head: Optional[str] = None, checkpoint: Optional[Path] = None, input_size: Optional[int] = None,
    detail_channels: Optional[int] = None,
) -> dict:
    """The network shape ``train-heading`` builds: ``input_size``, ``output_stride``, ``fine_channels``, ``head``
    and ``detail_channels``.

    Settings given win; the others come from the run's own ``checkpoint`` when it is resumed (so
    resuming needs no flags), else from the JSON saved beside ``init_weights`` when there is one (so
    "fine-tune the shipped weights" needs none either), else ``PreprocessConfig``'s defaults.

    Raises
    ------
    InputError
        When the checkpoint or the init weights' JSON cannot be read.
    """
    from models.inference import config_path_for
    from models.preprocess import PreprocessConfig
    from models.train import checkpoint_preprocess

    source = PreprocessConfig()
    path = config_path_for(init_weights) if init_weights is not None else None
    if checkpoint is not None and checkpoint.exists():
        try:
            source = checkpoint_preprocess(checkpoint)
        except _UNREADABLE_CHECKPOINT as error:
            raise InputError(f"{checkpoint}: cannot read the saved run settings: {error}") from error
    elif path is not None and path.exists():
        try:
            source = PreprocessConfig.from_json(path)
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise InputError(f"--init-weights {init_weights}: cannot read {path.name}: {error}") from error
    given = {"input_size": input_size, "output_stride": output_stride, "fine_channels": fine_channels, "head": head,
             "detail_channels": detail_channels}
    return {key: getattr(source, key) if value is None else value for key, value in given.items()}


def check_picture_out(path: Path) -> None:
    """Raise ``InputError`` unless ``path`` can be written as a picture (known suffix, writable folder)."""
    import os

    if path.is_dir():
        raise InputError(f"--png {path}: is a directory")
    if path.suffix.lower() not in _PICTURE_SUFFIXES:
        raise InputError(f"--png {path}: the suffix must be one of {sorted(_PICTURE_SUFFIXES)}")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"--png {path}: cannot write in {folder}")


def draw_heading_png(chip, result, index: int, out: Path, scale: int = 4) -> None:
    """Write the chip as an RGB PNG (upscaled) with keypoints and a heading arrow."""
    from PIL import Image, ImageDraw, ImageFont

    names = list(chip.band_names)
    planes = [names.index(b) if b in names else 0 for b in ("B04", "B03", "B02")]
    rgb = chip.data[planes].astype(np.float64)
    lo, hi = np.nanpercentile(rgb, [1, 99.5]) if np.isfinite(rgb).any() else (0.0, 1.0)
    rgb = np.nan_to_num(np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1))
    image = Image.fromarray((rgb.transpose(1, 2, 0) * 255).astype(np.uint8)).resize(
        (rgb.shape[2] * scale, rgb.shape[1] * scale), Image.NEAREST
    )
    draw = ImageDraw.Draw(image)
    colours = {"hull": (255, 60, 60), "wake_end": (255, 220, 0), "arm_left_end": (0, 200, 255), "arm_right_end": (0, 255, 120)}
    kp = result.keypoints_px[index] * scale
    for (name, colour), (x, y) in zip(colours.items(), kp, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=colour, width=2)
    heading = result.heading_grid_deg[index]
    if np.isfinite(heading) and np.all(np.isfinite(kp[0])):
        length = 0.25 * image.width
        h = math.radians(heading)
        x0, y0 = kp[0]
        x1, y1 = x0 + length * math.sin(h), y0 - length * math.cos(h)
        draw.line([x0, y0, x1, y1], fill=(255, 60, 60), width=3)
        for side in (-1, 1):
            a = h + math.pi + side * math.radians(25)
            draw.line([x1, y1, x1 + 14 * math.sin(a), y1 - 14 * math.cos(a)], fill=(255, 60, 60), width=3)
    label = "ambiguous" if result.ambiguous[index] else f"{result.heading_deg[index]:.1f}° ± {result.uncertainty_deg[index]:.1f}°"
    # Pillow's scalable default font, outlined: readable at any chip size and over bright water.
    font = ImageFont.load_default(size=max(12, image.width // 28))
    draw.text((6, 6), label, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""

    @app.command("heading")
    def heading(
        chip_path: Path = typer.Argument(..., help="Chip: PNG/JPEG (RGB), GeoTIFF or JPEG 2000 (bands B02 B03 B04 B08 or described)."),
        png: Optional[Path] = typer.Option(None, "--png", help="Also draw the keypoints and heading arrow into this PNG."),
        weights: Optional[Path] = typer.Option(None, "--weights", help="Model weights (default: shipped / settings)."),
        tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Test-time dihedral augmentation (8x cost, "
                                           "wider sigma); default: only when sigma exceeds the weights' tta_above_sigma_deg."),
        eager: bool = typer.Option(False, "--eager", help="Use eager PyTorch instead of the ONNX Runtime fast path."),
        land_check: bool = typer.Option(True, "--land-check/--no-land-check", help="Withdraw the heading when the wake "
                                        "line lies on land by NDWI (needs B03 and B08 in linear radiometry; switch it "
                                        "off for contrast-stretched 4-band chips)."),
    ) -> None:
        """Infer a vessel's heading from the wake in one chip; print JSON on stdout.

        ``heading_deg`` is a true bearing for georeferenced GeoTIFF / JPEG 2000 chips; for PNGs grid up is
        taken as north (``georeferenced: false``).
        """
        from pipeline.chip_files import chip_warnings
        from pipeline.heading import MAX_WAKE_LAND_SHARE, estimate_headings, load_heading_model
        from pipeline.motion import measure_motion

        try:
            if png is not None:
                check_picture_out(png)
            chip = read_chip(chip_path)
            model = load_heading_model(weights, fast=False if eager else None)
            result = estimate_headings([chip], model, tta=tta, max_wake_land_share=MAX_WAKE_LAND_SHARE if land_check else None)
            motion = measure_motion([chip])
        except (VesselwatchError, ValueError) as error:
            typer.echo(f"vesselwatch heading: {error}", err=True)
            raise typer.Exit(code=2) from error

        def _num(v: float, digits: int = 2):
            return None if not np.isfinite(v) else round(float(v), digits)

        summary = {
            "chip": str(chip_path),
            "heading_deg": _num(result.heading_deg[0]),
            "heading_grid_deg": _num(result.heading_grid_deg[0]),
            "grid_north_deg": round(float(chip.grid_north_deg), 4),
            "uncertainty_deg": _num(result.uncertainty_deg[0]),
            "ambiguous": bool(result.ambiguous[0]),
            "wake_probability": _num(result.wake_probability[0], 3),
            "wake_on_land": bool(result.wake_on_land[0]),
            **motion.as_dicts()[0],
            "georeferenced": bool(chip.georeferenced),
            "keypoints": result.keypoints_dict(0) if chip.georeferenced else {
                name: (None if v is None else {"x": v["x"], "y": v["y"]}) for name, v in result.keypoints_dict(0).items()
            },
            "backend": model.backend,
            "pixel_m": chip.pixel_m,
            "warnings": chip_warnings(chip, model.config.pixel_m),
        }
        for warning in summary["warnings"]:
            logger.warning("%s: %s", chip_path, warning)
        if png is not None:
            try:
                draw_heading_png(chip, result, 0, png)
                summary["png"] = str(png)
            except OSError as error:
                summary["png_error"] = f"{png}: {error}"
                logger.error("--png %s: %s", png, error)
        typer.echo(json.dumps(summary, indent=2))

    @app.command("train-heading")
    def train_heading(
        run_dir: Path = typer.Option(Path("var/heading/run"), "--run-dir", help="Checkpoints, metrics.csv, metrics.png."),
        epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Length of the cosine schedule. Default: "
                                             "the resumed run's, else 12."),
        steps_per_epoch: int = typer.Option(200, "--steps-per-epoch", min=1),
        batch_size: int = typer.Option(64, "--batch-size", min=2),
        lr: float = typer.Option(2e-3, "--lr", min=1e-9, max=1.0, help="Peak learning rate (cosine schedule)."),
        seed: int = typer.Option(0, "--seed", help="Same seed, same batches, same run."),
        input_size: Optional[int] = typer.Option(None, "--input-size", min=16, help="Centre crop fed to the network, "
                                                 "pixels. Default: the resumed run's, else the init weights', else 64."),
        output_stride: Optional[int] = typer.Option(None, "--output-stride", help="Backbone output stride: 32, or 16 "
                                                    "for a finer grid of head cells (last stage dilated; init weights "
                                                    "are adapted). Default: the resumed run's, else the init weights' (their JSON), else 32."),
        fine_channels: Optional[int] = typer.Option(None, "--fine-channels", min=0, help="Width of a lateral head "
                                                    "branch on the stride-8 features (0: none; init weights without it "
                                                    "start it at zero). Default: the resumed run's, else the init weights', else 0."),
        head: Optional[str] = typer.Option(None, "--head", help="Keypoint head: grid (dense layer over the flattened "
                                           "cells) or centre (soft arg-max over the stride-8 cells; needs "
                                           "--fine-channels). Default: the resumed run's, else the init weights', else grid."),
        detail_channels: Optional[int] = typer.Option(None, "--detail-channels", min=0, help="Width of a centre-head "
                                                      "branch on the stride-4 features, for 1-2 px hulls (0: none; init "
                                                      "weights without it start it at zero). Default: the resumed run's, "
                                                      "else the init weights', else 0."),
        threads: int = typer.Option(1, "--threads", min=0, help="CPU threads (1 is fastest on a busy 2-core box)."),
        workers: int = typer.Option(0, "--workers", min=0, help="Processes drawing the synthetic batches ahead of the "
                                    "training step (0: drawn in the loop; same batches either way). Pays where the "
                                    "generator, not the network, sets the pace (a GPU): give it the spare cores."),
        max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.01, help="Stop (and checkpoint) after this long; resume later."),
        fit_minutes: Optional[float] = typer.Option(None, "--fit-minutes", min=0.1, help="Size a new run to this budget: "
                                                    "time a few steps here, then train as many whole --steps-per-epoch "
                                                    "epochs as fit (instead of --epochs; the cosine schedule ends in time). "
                                                    "Also the default --max-minutes. Resume such a run without it."),
        checkpoint_minutes: float = typer.Option(4.0, "--checkpoint-minutes", min=0.01),
        val_count: int = typer.Option(768, "--val-count", min=1),
        shipwakes: Optional[Path] = typer.Option(None, "--shipwakes", help="ShipWakes-format directory to mix in (imgs/ + annotations/)."),
        shipwakes_fraction: float = typer.Option(0.25, "--shipwakes-fraction", min=0.0, max=0.95),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from RUN_DIR/last.pt when present."),
        init_weights: Optional[Path] = typer.Option(None, "--init-weights", help="Fine-tune: start a new run from "
                                                    "these weights (e.g. the shipped ones) instead of at random."),
        faint_fraction: float = typer.Option(0.0, "--faint-fraction", min=0.0, max=0.95, help="Share of each batch "
                                             "drawn from the faint-wake corner of the training ranges (small, slow vessels)."),
        train_range: list[str] = typer.Option([], "--range", help="Change one of the training ranges, KEY=VALUE, "
                                              "e.g. p_cloud=0.6 (repeatable; the faint corner keeps its own)."),
        faint_range: list[str] = typer.Option([], "--faint-range", help="Change one range of the faint corner, "
                                              "KEY=VALUE, e.g. p_glint=0.7 or noise_sigma=0.002,0.004 (repeatable)."),
        zoom_fraction: float = typer.Option(0.0, "--zoom-fraction", min=0.0, max=1.0, help="Share of each synthetic "
                                            "batch shown zoomed, as multi-scale inference (calibrate-heading "
                                            "--zoom-scales) shows chips: the centre input-size/z px resampled to the input size."),
        zoom_scales: str = typer.Option("1.25,1.5", "--zoom-scales", help="Zooms of --zoom-fraction, comma-separated, "
                                        "drawn equally often."),
        wakeless_kappa_weight: float = typer.Option(0.0, "--wakeless-kappa-weight", min=0.0, help="Loss weight pulling "
                                                    "the heading's concentration toward 0 on chips without a wake "
                                                    "(their heading then comes out ambiguous, not confident)."),
        export: Optional[Path] = typer.Option(None, "--export", help="After training, write EMA weights + JSON here "
                                              "and calibrate them (as calibrate-heading)."),
    ) -> None:
        """Train the wake-keypoint heading model on synthetic chips (CPU or CUDA), resumable."""
        from models.network import check_head
        from models.preprocess import PreprocessConfig
        from models.shipwakes import annotated_images
        from models.train import CheckpointMismatch, TrainConfig, checkpoint_epochs, train
        from models.wake_chips import FAINT_RANGES, TRAIN_RANGES

        last = run_dir / "last.pt"
        resuming = resume and last.is_file()
        if fit_minutes is not None and epochs is not None:
            typer.echo("vesselwatch train-heading: give --epochs or --fit-minutes, not both (--fit-minutes sets the epochs)", err=True)
            raise typer.Exit(code=2)
        if fit_minutes is not None and resuming:
            typer.echo(f"vesselwatch train-heading: --fit-minutes sizes a new run, and {last} exists: resume it without "
                       "--fit-minutes (it keeps the epochs it was sized to), or start over with --no-resume", err=True)
            raise typer.Exit(code=2)
        if resuming:
            try:
                saved_epochs = checkpoint_epochs(last)
            except _UNREADABLE_CHECKPOINT as error:
                typer.echo(f"vesselwatch train-heading: {last}: cannot read the saved run settings: {error}", err=True)
                raise typer.Exit(code=2) from error
            if epochs is not None and epochs != saved_epochs:
                logger.warning("%s was set to %d epochs; --epochs %d changes its learning-rate schedule from here on",
                               last, saved_epochs, epochs)
            epochs = saved_epochs if epochs is None else epochs
        epochs = 12 if epochs is None else epochs
        if shipwakes is not None and not annotated_images(shipwakes):
            problem = ("no annotated images to mix in (expected imgs/NAME.png with annotations/NAME.json)"
                       if (shipwakes / "imgs").is_dir() and (shipwakes / "annotations").is_dir()
                       else "not a ShipWakes directory: expected imgs/ and annotations/")
            typer.echo(f"vesselwatch train-heading: --shipwakes {shipwakes}: {problem}", err=True)
            raise typer.Exit(code=2)

        try:
            ranges = ranges_with_overrides(TRAIN_RANGES, train_range, option="--range")
            faint_ranges = ranges_with_overrides(FAINT_RANGES, faint_range)
            zooms = parse_zoom_scales(zoom_scales)
        except InputError as error:
            typer.echo(f"vesselwatch train-heading: {error}", err=True)
            raise typer.Exit(code=2) from error
        try:
            shape = network_shape(init_weights, input_size=input_size, output_stride=output_stride,
                                  fine_channels=fine_channels, head=head, detail_channels=detail_channels,
                                  checkpoint=run_dir / "last.pt" if resume else None)
        except InputError as error:
            typer.echo(f"vesselwatch train-heading: {error}", err=True)
            raise typer.Exit(code=2) from error
        try:
            check_head(shape["head"], shape["fine_channels"], shape["input_size"], shape["output_stride"],
                       shape["detail_channels"])
        except ValueError as error:
            typer.echo(f"vesselwatch train-heading: network shape (--head {shape['head']}, --fine-channels, --detail-channels, "
                       f"--input-size, --output-stride): {error}", err=True)
            raise typer.Exit(code=2) from error
        try:
            config = TrainConfig(
                run_dir=run_dir, seed=seed, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size, lr=lr,
                val_count=val_count, checkpoint_minutes=checkpoint_minutes, max_minutes=max_minutes, threads=threads,
                shipwakes_dir=shipwakes, shipwakes_fraction=shipwakes_fraction, init_weights=init_weights,
                ranges=ranges, faint_fraction=faint_fraction, faint_ranges=faint_ranges, zoom_fraction=zoom_fraction,
                zoom_scales=zooms, wakeless_kappa_weight=wakeless_kappa_weight, preprocess=PreprocessConfig(**shape),
                workers=workers,
            )
        except ValueError as error:  # an infinite weight, no zoom for --zoom-fraction, one that crops nothing at --input-size
            typer.echo(f"vesselwatch train-heading: {error}", err=True)
            raise typer.Exit(code=2) from error
        if run_dir.exists() and not run_dir.is_dir():
            typer.echo(f"vesselwatch train-heading: --run-dir {run_dir}: exists and is not a directory", err=True)
            raise typer.Exit(code=2)
        if init_weights is not None and not init_weights.is_file():
            typer.echo(f"vesselwatch train-heading: --init-weights {init_weights}: not a weights file", err=True)
            raise typer.Exit(code=2)
        if fit_minutes is not None:
            from models.train_budget import epochs_for_budget, measure_step_rate

            try:
                rate = measure_step_rate(config)
                config.epochs = epochs_for_budget(config, fit_minutes, rate)
            except VesselwatchError as error:  # an unreadable --shipwakes image or annotation, read to time the run
                typer.echo(f"vesselwatch train-heading: {error}", err=True)
                raise typer.Exit(code=2) from error
            except (ValueError, RuntimeError) as error:  # too short a budget; workers that cannot start
                typer.echo(f"vesselwatch train-heading: --fit-minutes {fit_minutes:g}: {error}", err=True)
                raise typer.Exit(code=2) from error
            config.max_minutes = fit_minutes if max_minutes is None else max_minutes
            logger.info("%.2f steps/s here: %d epochs of %d steps fit %.3g min", rate, config.epochs,
                        config.steps_per_epoch, fit_minutes)
        if not resume and last.exists():  # only once every input has been checked and the run sized
            last.unlink()
        try:
            history = train(config, resume=resume)
        except RuntimeError as error:
            if "batch workers" not in str(error):
                raise
            typer.echo(f"vesselwatch train-heading: --workers {workers}: {error}", err=True)
            raise typer.Exit(code=2) from error
        except CheckpointMismatch as error:
            typer.echo(f"vesselwatch train-heading: --run-dir {error}", err=True)
            raise typer.Exit(code=2) from error
        except VesselwatchError as error:  # an unreadable --shipwakes directory, say
            typer.echo(f"vesselwatch train-heading: {error}", err=True)
            raise typer.Exit(code=2) from error
        summary = {"run_dir": str(run_dir), "epochs": config.epochs, "epochs_done": len(history),
                   "last": history[-1] if history else None}
        if export is not None:
            summary["weights"] = export_and_calibrate(run_dir / "last.pt", export)
        typer.echo(json.dumps(summary, indent=2, default=str))

    @app.command("average-heading-weights")
    def average_heading_weights(
        weights: list[Path] = typer.Argument(..., help="Two or more weights files (.pt, JSON beside each) "
                                             "fine-tuned from the same start."),
        out: Path = typer.Option(..., "--out", "-o", help="Averaged weights (.pt); its JSON is written beside it."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Refit sigma scales and wake "
                                       "threshold for the averaged weights (as calibrate-heading)."),
    ) -> None:
        """Average fine-tuned weights into one model (a "model soup": same network, no extra inference cost)."""
        from models.inference import file_sha256
        from models.soup import average_weights

        if out.suffix.lower() == ".json" or out.is_dir():
            typer.echo(f"vesselwatch average-heading-weights: --out {out}: give the weights file (.pt); "
                       "its JSON is written beside it", err=True)
            raise typer.Exit(code=2)
        try:
            average_weights(weights, out)
            summary = calibrate_weights(out) if calibrate else {"path": str(out), "sha256": file_sha256(out)}
        except (VesselwatchError, ValueError) as error:
            typer.echo(f"vesselwatch average-heading-weights: {error}", err=True)
            raise typer.Exit(code=2) from error
        typer.echo(json.dumps(summary, indent=2))

    @app.command("calibrate-heading")
    def calibrate_heading(
        weights: Path = typer.Argument(..., help="Weights file (.pt) with its JSON next to it; the JSON is updated."),
        count: int = typer.Option(4096, "--count", min=64, help="Synthetic calibration chips (training ranges, own seed)."),
        shipwakes: Optional[Path] = typer.Option(None, "--shipwakes", help="Calibrate on the real wakes of this "
                                                 "ShipWakes-format directory (imgs/ + annotations/) instead of synthetic chips (then --count is "
                                                 "not used, and the wake threshold is kept: every image has a wake)."),
        tta_above: float = typer.Option(3.0, "--tta-above-sigma", min=0.0, help="Written as tta_above_sigma_deg: chips with "
                                        "a wider sigma (degrees) also run the 8 dihedral symmetries (360: none do)."),
        zoom: Optional[str] = typer.Option(None, "--zoom-scales",
                                           help="Written as zoom_scales and calibrated with (with --shipwakes the threshold is kept): comma-separated zooms "
                                           "(> 1, at most 4) that the less confident chips also run at, e.g. 1.25,1.5 "
                                           "(multi-scale inference, docs/heading.md); '' for one pass. Default: as the JSON has it."),
        zoom_below: Optional[float] = typer.Option(None, "--zoom-below", min=0.0, max=1.0,
                                                   help="Written as zoom_below_probability: chips whose wake probability "
                                                   "at zoom 1 is below this run the zooms (e.g. 0.999). Default: as the JSON has it."),
    ) -> None:
        """Refit the sigma scales (±2σ holds 95% of truths) and the wake threshold (95% of reported headings within 10°)."""
        from models.inference import config_path_for

        try:
            if not weights.is_file() or not config_path_for(weights).is_file():
                raise InputError(f"{weights}: expected a weights file with its JSON ({config_path_for(weights).name}) beside it")
            summary = calibrate_weights(weights, count=count, tta_above_sigma_deg=tta_above, shipwakes=shipwakes,
                                        zoom_scales=None if zoom is None else parse_zoom_scales(zoom),
                                        zoom_below_probability=zoom_below)
        except (VesselwatchError, ValueError) as error:
            typer.echo(f"vesselwatch calibrate-heading: {error}", err=True)
            raise typer.Exit(code=2) from error
        typer.echo(json.dumps(summary, indent=2))


def ranges_with_overrides(ranges: ChipRanges, items: list[str], option: str = "--faint-range") -> ChipRanges:
    """``ranges`` with ``KEY=VALUE`` items applied.

    A range field takes two comma-separated numbers (``noise_sigma=0.002,0.004``), a probability or
    other scalar field one (``p_glint=0.7``). ``option`` names the CLI option in error messages.

    Raises
    ------
    InputError
        When an item is not ``KEY=VALUE``, names no field, or has the wrong count of numbers.
    """
    from dataclasses import fields, replace

    known = {f.name for f in fields(ranges)}
    changes: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise InputError(f"{option} {item!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            numbers = tuple(float(v) for v in value.split(","))
        except ValueError as error:
            raise InputError(f"{option} {item!r}: VALUE must be numbers separated by commas") from error
        current = getattr(ranges, key)
        arity = len(current) if isinstance(current, tuple) else 1
        if len(numbers) != arity:
            raise InputError(f"{option} {item!r}: {key} takes {arity} number(s), got {len(numbers)}")
        if not all(math.isfinite(n) for n in numbers):
            raise InputError(f"{option} {item!r}: VALUE must be finite numbers")
        if arity == 2 and numbers[0] > numbers[1]:
            raise InputError(f"{option} {item!r}: a range is LOW,HIGH with LOW <= HIGH")
        if key.startswith("p_") and not 0.0 <= numbers[0] <= 1.0:
            raise InputError(f"{option} {item!r}: {key} is a probability, 0..1")
        changes[key] = numbers if isinstance(current, tuple) else numbers[0]
    return replace(ranges, **changes)


def parse_zoom_scales(text: str, option: str = "--zoom-scales") -> tuple[float, ...]:
    """``"1.25,1.5"`` -> ``(1.25, 1.5)``; ``""`` -> ``()``.

    Raises
    ------
    InputError
        When an item is not a number, or :class:`models.preprocess.PreprocessConfig` refuses the
        zooms (range, duplicates, a zoom that crops nothing at its default 64 px input; the
        weights' own input size is checked again when they are written).
    """
    from models.preprocess import PreprocessConfig

    zooms = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            zooms.append(float(item))
        except ValueError as error:
            raise InputError(f"{option} {text!r}: {item!r} is not a number") from error
    try:
        return PreprocessConfig(zoom_scales=tuple(zooms)).zoom_scales
    except ValueError as error:
        raise InputError(f"{option} {text!r}: {str(error).removeprefix('zoom_scales: ')}") from error


def export_and_calibrate(checkpoint: Path, weights_path: Path) -> dict:
    """Export a checkpoint's EMA weights with their JSON, then fit and store the sigma scale and wake threshold."""
    from models.train import export_weights

    export_weights(checkpoint, weights_path)
    return calibrate_weights(weights_path)


def calibrate_weights(weights_path: Path, count: int = 4096, tta_above_sigma_deg: float | None = 3.0,
                      shipwakes: Path | None = None, chip_size: int = 128,
                      zoom_scales: tuple[float, ...] | None = None,
                      zoom_below_probability: float | None = None) -> dict:
    """Fit the sigma scales and the wake-probability threshold of exported weights; write them to their JSON.

    The calibration set is ``count`` synthetic chips (training ranges, own seed) or, with
    ``shipwakes``, every image of that ShipWakes-format directory cut as a ``chip_size`` px chip
    around its annotated hull (real wakes; all have one, so the wake threshold is kept and only the
    sigma factors are refitted: without wakeless chips a threshold cannot be fitted).

    ``tta_above_sigma_deg`` is written too (not fitted): above that calibrated sigma a chip also runs
    the 8 dihedral symmetries by default. On the calibration set of the shipped weights 3° selects
    13% of the chips and gives the whole gain of TTA on every chip (94.6% within 10° against 94.3%).
    ``zoom_scales`` and ``zoom_below_probability`` (``None``: as the JSON has them) are written too
    and calibrated with: the fitted threshold and factors are those of the multi-scale answers (with
    ``shipwakes`` only the factors: the threshold is kept, so change zooms on synthetic chips first).
    """
    from models.calibrate import CALIBRATION_SEED, calibrate, calibrate_on_chips
    from models.inference import config_path_for, file_sha256, load_heading_model
    from models.preprocess import PreprocessConfig

    json_path = config_path_for(weights_path)
    model = load_heading_model(weights_path, fast=False)
    zoom_scales = model.config.zoom_scales if zoom_scales is None else tuple(zoom_scales)
    if zoom_below_probability is None:
        zoom_below_probability = model.config.zoom_below_probability
    if shipwakes is not None and (zoom_scales, zoom_below_probability) != (model.config.zoom_scales,
                                                                            model.config.zoom_below_probability):
        logger.warning("%s: the zooms change but the wake threshold is kept on ShipWakes chips (all have a wake); "
                       "refit it with a synthetic calibration (no --shipwakes) after changing zooms", weights_path)
    model.config = model.config.replace(zoom_scales=zoom_scales, zoom_below_probability=zoom_below_probability)
    if shipwakes is None:
        fitted = calibrate(model, count=count)
        described = f"{fitted.count} synthetic chips, TRAIN_RANGES, seed {CALIBRATION_SEED}"
        threshold_note = f"lowest at which {fitted.precision_pct:.1f}% (≥ 95%) of reported headings are within 10°"
    else:
        from models.shipwakes import hull_centred_chips, load_shipwakes

        try:
            chips = hull_centred_chips(load_shipwakes(shipwakes), chip_size)
        except InputError as error:
            raise InputError(f"{shipwakes}: {error}") from error
        n = len(chips["data"])
        if n < 200:
            logger.warning("%s: %d images is few for a 95%% quantile; the fitted factors will be noisy", shipwakes, n)
        fitted = calibrate_on_chips(model, chips["data"], chips["band_names"], chips["heading_grid_deg"], np.ones(n, dtype=bool))
        described = (f"{n} ShipWakes images of {shipwakes}, chips of {chip_size} px around the annotated hull "
                     "(all with a wake: the wake threshold was kept, not fitted)")
        threshold_note = f"kept (every chip has a wake); {fitted.precision_pct:.1f}% of the headings it reports there are within 10°"
    config = PreprocessConfig.from_json(json_path)
    extra = {**config.extra, "calibration": {
        "set": described,
        "uncertainty_scale": "95% of the truths with a wake within ±2 sigma",
        "uncertainty_scale_bins": "the same per band of wake probability, on the chips that get a heading",
        "wake_probability_threshold": threshold_note,
    }}
    bins = tuple((lo, round(factor, 4)) for lo, factor in fitted.uncertainty_scale_bins)
    config = config.replace(uncertainty_scale=round(fitted.uncertainty_scale, 4), uncertainty_scale_bins=bins,
                            wake_probability_threshold=fitted.wake_probability_threshold,
                            tta_above_sigma_deg=tta_above_sigma_deg, zoom_scales=zoom_scales,
                            zoom_below_probability=zoom_below_probability, extra=extra)
    config.to_json(json_path)
    return {
        "path": str(weights_path), "sha256": file_sha256(weights_path), "uncertainty_scale": fitted.uncertainty_scale,
        "uncertainty_scale_bins": bins, "tta_above_sigma_deg": tta_above_sigma_deg,
        "zoom_scales": list(zoom_scales), "zoom_below_probability": zoom_below_probability,
        "wake_probability_threshold": fitted.wake_probability_threshold, "precision_pct": fitted.precision_pct,
    }
