"""``vesselwatch heading`` and its sibling commands on inputs a user gets wrong: named errors, no wrong answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image
from typer.testing import CliRunner

from models.metrics import angular_error_deg
from models.preprocess import PreprocessConfig, fill_nonfinite
from models.wake_chips import ChipRanges, draw_chips
from pipeline.chips import chip_grid_problem
from vesselwatch.cli import app

EASY = ChipRanges(length_m=(80.0, 200.0), speed_kn=(14.0, 20.0), p_wake=1.0, noise_sigma=(0.0005, 0.001),
                  p_glint=0.0, p_cloud=0.0, p_stretch=0.0, p_rgb_only=0.0, jitter_px=1.0, p_distractor=0.0)
NORTH_UP = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5800000.0)


@pytest.fixture(scope="module")
def chip():
    chips = draw_chips(2024, 1, EASY, size=128)
    return chips["data"][0].astype(np.float32), float(chips["heading_grid_deg"][0])


def _tif(path, data, transform=NORTH_UP, crs="EPSG:32631", nodata=None):
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
                   crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _heading(*args):
    return CliRunner().invoke(app, ["heading", *map(str, args), "--eager"])


def test_rotated_flipped_or_non_square_grids_are_refused_not_misread(tmp_path, chip):
    data, _ = chip
    cases = {
        "rot30.tif": (Affine.translation(600000, 5800000) @ Affine.rotation(30) @ Affine.scale(10, -10), "EPSG:32631"),
        "south_up.tif": (Affine(10, 0, 600000, 0, 10, 5798720), "EPSG:32631"),
        "mirror.tif": (Affine(-10, 0, 601280, 0, -10, 5800000), "EPSG:32631"),
        "lonlat.tif": (Affine(0.0001, 0, 3.0, 0, -0.0001, 52.0), "EPSG:4326"),
    }
    for name, (transform, crs) in cases.items():
        result = _heading(_tif(tmp_path / name, data, transform, crs))
        assert result.exit_code == 2, (name, result.output)
        assert name in result.output and ("rotated or flipped" in result.output or "not square" in result.output), result.output
    assert chip_grid_problem(NORTH_UP, "EPSG:32631", 128, 128) is None
    # Near the equator a degree grid is square enough on the ground.
    assert chip_grid_problem(Affine(0.0001, 0, 3.0, 0, -0.0001, 1.0), "EPSG:4326", 128, 128) is None


def test_nodata_and_nan_pixels_are_filled_not_spread(tmp_path, chip):
    data, truth = chip
    clean = json.loads(_heading(_tif(tmp_path / "clean.tif", data)).output)
    holed = data.copy()
    holed[:, 70, 60] = np.nan  # one pixel inside the crop the model sees
    out = json.loads(_heading(_tif(tmp_path / "nan.tif", holed)).output)
    assert out["heading_grid_deg"] is not None and angular_error_deg(out["heading_grid_deg"], truth) <= 10.0
    assert angular_error_deg(out["heading_grid_deg"], clean["heading_grid_deg"]) < 2.0
    dn = np.round(data * 10000).astype(np.int16)
    dn[:, 60:64, 40:50] = -9999  # declared nodata inside the crop the model sees is not reflectance
    picture = tmp_path / "nodata.png"
    result = _heading(_tif(tmp_path / "nodata.tif", dn, nodata=-9999), "--png", picture)
    assert result.exit_code == 0, result.output
    assert angular_error_deg(json.loads(result.stdout)["heading_grid_deg"], truth) <= 10.0
    assert np.asarray(Image.open(picture).convert("L")).std() > 10  # drawn, not blacked out by the holes

    mostly_empty = data.copy()
    mostly_empty[:, 40:90, 30:100] = np.nan  # most of what the model would see
    result = _heading(_tif(tmp_path / "swath_edge.tif", mostly_empty))
    assert result.exit_code == 2 and "nodata" in result.output and "swath_edge.tif" in result.output, result.output

    batch = np.ones((2, 2, 4, 4), np.float32)
    batch[0, 0, 1, 1], batch[0, 1, 0, 0], batch[1, 1] = np.nan, np.inf, np.nan
    filled = fill_nonfinite(batch)
    assert np.isfinite(filled).all() and filled[0, 0, 1, 1] == 1.0 and (filled[1, 1] == 0.0).all()
    finite = np.ones((1, 1, 2, 2), np.float32)
    assert fill_nonfinite(finite) is finite


def test_one_band_chips_and_16_bit_grey_pngs_are_read_as_grey_pictures(tmp_path, chip):
    data, truth = chip
    out = json.loads(_heading(_tif(tmp_path / "one.tif", data[3:4])).output)
    assert out["wake_on_land"] is False  # no NIR: NDWI cannot be computed, so no land check
    grey = data[3] / data[3].max()
    Image.fromarray(np.round(grey * 65535).astype(np.uint16)).save(tmp_path / "grey16.png")
    Image.fromarray(np.round(grey * 255).astype(np.uint8)).save(tmp_path / "grey8.png")
    wide = json.loads(_heading(tmp_path / "grey16.png").output)
    narrow = json.loads(_heading(tmp_path / "grey8.png").output)
    assert wide["wake_probability"] > 0.5 and abs(wide["wake_probability"] - narrow["wake_probability"]) < 0.1
    assert angular_error_deg(wide["heading_grid_deg"], narrow["heading_grid_deg"]) < 3.0


def test_unreadable_chips_and_outputs_are_named_before_any_work(tmp_path, chip):
    data, _ = chip
    good = _tif(tmp_path / "good.tif", data)
    (tmp_path / "text.png").write_text("not a picture")
    (tmp_path / "folder.png").mkdir()
    for bad, words in ((tmp_path / "text.png", "could not be read"), (tmp_path / "folder.png", "is a directory"),
                       (_tif(tmp_path / "tiny.tif", data[:, :8, :8]), "at least 16 px")):
        result = _heading(bad)
        assert result.exit_code == 2 and words in result.output and bad.name in result.output, result.output
    # A GeoTIFF named .png is read as the GeoTIFF it is (georeferencing kept).
    disguised = tmp_path / "disguised.png"
    disguised.write_bytes(good.read_bytes())
    assert json.loads(_heading(disguised).output)["georeferenced"] is True
    for out, words in ((tmp_path / "arrow.txt", "suffix"), (tmp_path, "is a directory"),
                       (good / "x.png", "cannot write")):
        result = _heading(good, "--png", out)
        assert result.exit_code == 2 and words in result.output and "{" not in result.output, result.output


def test_weights_that_torch_cannot_load_are_named(tmp_path, chip):
    data, _ = chip
    good = _tif(tmp_path / "good.tif", data)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a zip or a pickle")
    PreprocessConfig().to_json(tmp_path / "garbage.json")
    listed = tmp_path / "listed.pt"
    torch.save({}, listed)
    (tmp_path / "listed.json").write_text("[1, 2]")
    edited = tmp_path / "edited.pt"
    torch.save({}, edited)
    raw = json.loads((tmp_path / "garbage.json").read_text())
    (tmp_path / "edited.json").write_text(json.dumps({**raw, "input_size": 0}))
    for weights, words in ((garbage, "garbage.pt: not a PyTorch state_dict"), (listed, "listed.json: not a usable"),
                           (edited, "input_size")):
        result = _heading(good, "--weights", weights)
        assert result.exit_code == 2 and words in result.output, result.output
        assert "Traceback" not in result.output


def test_sibling_commands_refuse_bad_values_up_front(tmp_path):
    runner = CliRunner()
    soup = runner.invoke(app, ["average-heading-weights", "a.pt", "b.pt", "--out", str(tmp_path / "soup.json")])
    assert soup.exit_code == 2 and "give the weights file (.pt)" in soup.output
    base = ["train-heading", "--run-dir", str(tmp_path / "run"), "--epochs", "1", "--steps-per-epoch", "1",
            "--batch-size", "2", "--val-count", "4"]
    for extra, words in ((["--range", "noise_sigma=0.004,0.002"], "LOW <= HIGH"), (["--range", "p_cloud=2"], "probability"),
                         (["--faint-range", "glint=nan,0.1"], "finite"), (["--init-weights", str(tmp_path / "none.pt")], "not a weights file"),
                         (["--zoom-fraction", "0.5", "--zoom-scales", ""], "needs at least one zoom"),
                         (["--zoom-fraction", "0.5", "--zoom-scales", "1.5,x"], "'x' is not a number"),
                         (["--zoom-fraction", "0.5", "--zoom-scales", "1.01", "--input-size", "32"], "no zoom at all"),
                         (["--wakeless-kappa-weight", "inf"], "finite weight")):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and words in result.output, (extra, result.output)
    for extra in (["--lr", "-1"], ["--val-count", "0"], ["--input-size", "0"], ["--shipwakes-fraction", "2"],
                  ["--zoom-fraction", "1.5"], ["--zoom-fraction", "nan"], ["--wakeless-kappa-weight", "nan"], ["--wakeless-kappa-weight", "-1"],
                  ["--workers", "-1"]):
        assert runner.invoke(app, base + extra).exit_code == 2, extra
    assert not (tmp_path / "run" / "last.pt").exists()
    # --no-resume removes the old checkpoint only once every input has been checked.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "last.pt").write_bytes(b"not a checkpoint")
    base[2] = str(kept)
    result = runner.invoke(app, base + ["--no-resume", "--init-weights", str(tmp_path / "typo.pt")])
    assert result.exit_code == 2 and (kept / "last.pt").exists(), result.output
    result = runner.invoke(app, base + ["--no-resume", "--output-stride", "24"])
    assert result.exit_code == 2 and "output_stride: expected 8, 16 or 32" in result.output, result.output
    assert (kept / "last.pt").exists()
    result = runner.invoke(app, base)  # resuming a corrupt checkpoint is named, not a traceback
    assert result.exit_code == 2 and "last.pt: cannot read the saved run settings" in result.output, result.output


def test_a_chip_far_from_10_m_pixels_is_answered_with_a_warning(tmp_path, chip):
    from pipeline.chip_files import pixel_size_warning

    data, _ = chip
    plain = _heading(_tif(tmp_path / "s2.tif", data))
    assert plain.exit_code == 0 and json.loads(plain.stdout)["warnings"] == [], plain.output
    assert json.loads(plain.stdout)["pixel_m"] == pytest.approx(10.0, rel=0.01)
    coarse = _heading(_tif(tmp_path / "landsat.tif", data, Affine(30.0, 0.0, 600000.0, 0.0, -30.0, 5800000.0)))
    assert coarse.exit_code == 0, coarse.output
    (warning,) = json.loads(coarse.stdout)["warnings"]
    assert "30.0 m" in warning and "10 m" in warning
    # Degree grids are measured on the ground: 0.0001 deg near the equator is about 11 m, close enough.
    near = _heading(_tif(tmp_path / "lonlat.tif", data, Affine(0.0001, 0, 3.0, 0, -0.0001, 1.0), "EPSG:4326"))
    assert near.exit_code == 0 and json.loads(near.stdout)["warnings"] == [], near.output
    far = _heading(_tif(tmp_path / "coarse_deg.tif", data, Affine(0.0003, 0, 3.0, 0, -0.0003, 1.0), "EPSG:4326"))
    assert "EPSG:326NN" in json.loads(far.stdout)["warnings"][0]  # resample in metres, not "-tr 10 10" degrees
    assert pixel_size_warning(None, 10.0) is None and pixel_size_warning(12.4, 10.0) is None
    assert pixel_size_warning(7.4, 10.0) is not None and pixel_size_warning(float("nan"), 10.0) is None


def test_rgba_tiffs_use_alpha_as_the_mask_and_8_bit_4_band_chips_keep_their_nir(tmp_path):
    from pipeline.chip_files import read_chip_file

    rng = np.random.default_rng(0)
    rgb = rng.integers(20, 200, (3, 32, 32)).astype(np.uint8)
    alpha = np.full((1, 32, 32), 255, np.uint8)
    alpha[0, :4, :5] = 0  # transparent corner
    nir = rng.integers(1, 40, (1, 32, 32)).astype(np.uint8)

    def write(name, data, colours=None):
        profile = dict(driver="GTiff", width=32, height=32, count=data.shape[0], dtype=data.dtype)
        with rasterio.open(tmp_path / name, "w", **profile) as dst:
            dst.write(data)
            if colours is not None:
                dst.colorinterp = colours
        return read_chip_file(tmp_path / name)

    # GDAL declares band 4 of an 8-bit 4-band TIFF alpha; here it is one: a mask, not NIR.
    rgba = write("rgba.tif", np.concatenate([rgb, alpha]))
    assert rgba.band_names == ["B04", "B03", "B02"] and rgba.nodata_pixels == 20
    np.testing.assert_allclose(rgba.data[:, 10:, 10:], rgb[:, 10:, 10:] / 255.0, rtol=1e-6)
    # The same declaration over an image (a B02 B03 B04 B08 chip written without descriptions): data.
    four = write("b02_b08.tif", np.concatenate([rgb, nir]))
    assert four.band_names == ["B02", "B03", "B04", "B08"] and four.nodata_pixels == 0
    np.testing.assert_allclose(four.data[3], nir[0] / 255.0, rtol=1e-6)
    # Alpha that GDAL would not mask with (nodata set too; alpha first; a float band) is still the mask.
    masked = write("rgba_nodata.tif", np.concatenate([rgb, alpha]))
    with rasterio.open(tmp_path / "rgba_nodata.tif", "r+") as dst:
        dst.nodata = 0
    assert read_chip_file(tmp_path / "rgba_nodata.tif").nodata_pixels == 20
    from rasterio.enums import ColorInterp as C

    first = write("argb.tif", np.concatenate([alpha, rgb]), [C.alpha, C.red, C.green, C.blue])
    assert first.band_names == ["B04", "B03", "B02"] and first.nodata_pixels == 20
    floats = np.concatenate([rgb / 255.0, np.where(alpha > 0, 1.0, np.nan)]).astype(np.float32)
    floating = write("rgba_float.tif", floats, [C.red, C.green, C.blue, C.alpha])
    assert floating.band_names == ["B04", "B03", "B02"] and floating.nodata_pixels == 20
    # GDAL's default alpha with nothing opaque in it is an empty band, not a chip-wide hole.
    empty = write("b08_zero.tif", np.concatenate([rgb, np.zeros_like(alpha)]))
    assert empty.band_names == ["B02", "B03", "B04", "B08"] and empty.nodata_pixels == 0
    # Colours in another order are named by colour, not position.
    from rasterio.enums import ColorInterp

    bgr = write("bgr.tif", rgb[::-1].astype(np.uint16) * 40, [ColorInterp.blue, ColorInterp.green, ColorInterp.red])
    assert bgr.band_names == ["B02", "B03", "B04"]
    np.testing.assert_allclose(bgr.data[0], rgb[2].astype(np.float64) * 40 / 10000.0, rtol=1e-6)


def test_band_descriptions_other_tools_write_name_the_bands():
    from pipeline.chip_files import _band_names

    assert _band_names(4, ("nir", "red", "green", "blue"))[0] == ["B08", "B04", "B03", "B02"]
    assert _band_names(3, ("b04", "B03 ", " B02"))[0] == ["B04", "B03", "B02"]
    # b1..b4 (Earth Engine's default names, Landsat's bands) say where a band is: named by count.
    assert _band_names(4, ("b1", "b2", "b3", "b4"))[0] == ["B02", "B03", "B04", "B08"]
    assert _band_names(2, ("B08", "NIR08"))[0] == ["B08", "B8A"]
    # "Band 1".."Band 4" say where a band is, not what it holds: named by count, not as B01..B04.
    assert _band_names(4, ("Band 1", "Band 2", "Band 3", "Band 4"))[0] == ["B02", "B03", "B04", "B08"]
    # Two bands claiming one name are not trusted either.
    assert _band_names(3, ("red", "B04", "blue"))[0] == ["B04", "B03", "B02"]


def test_a_chip_with_ground_control_points_only_says_its_heading_is_in_the_grid(tmp_path, chip):
    from rasterio.control import GroundControlPoint

    data, _ = chip
    path = tmp_path / "gcps.tif"
    gcps = [GroundControlPoint(row, col, 600000.0 + 10 * col, 5800000.0 - 10 * row)
            for row, col in ((0, 0), (0, 127), (127, 0), (127, 127))]
    profile = dict(driver="GTiff", width=128, height=128, count=4, dtype="float32", gcps=gcps, crs="EPSG:32631")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    result = _heading(path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["georeferenced"] is False and out["pixel_m"] is None
    (warning,) = out["warnings"]
    assert "4 ground control points" in warning and "gdalwarp" in warning and "-tr 10 10" in warning


def test_the_ground_control_point_warning_names_the_model_s_pixel_size():
    from pipeline.chip_files import ChipFile, chip_warnings

    chip = ChipFile(np.zeros((3, 16, 16), np.float32), ["B04", "B03", "B02"], "geotiff", gcp_count=5)
    (warning,) = chip_warnings(chip, model_pixel_m=20.0)
    assert "5 ground control points" in warning and "-tr 20 20" in warning
    assert chip_warnings(ChipFile(chip.data, chip.band_names, "png"), model_pixel_m=20.0) == []
