"""Weight averaging of fine-tunes (model soup) and the CLI options that make its ingredients."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch
from typer.testing import CliRunner

from models.inference import config_path_for, file_sha256, load_heading_model
from models.network import create_model
from models.preprocess import PreprocessConfig
from models.soup import average_state_dicts, average_weights
from models.wake_chips import FAINT_RANGES, TRAIN_RANGES
from vesselwatch.cli import app
from vesselwatch.commands.heading import network_shape, ranges_with_overrides
from vesselwatch.errors import InputError


def _write(path, seed: int, config: PreprocessConfig) -> None:
    torch.manual_seed(seed)
    torch.save(create_model(config.architecture, len(config.bands), config.input_size).state_dict(), path)
    config.replace(extra={"training": {"seed": seed, "started_from": {"sha256": "start"}}}).to_json(config_path_for(path))


def test_average_is_the_elementwise_mean_and_keeps_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(5), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(9), "h": torch.tensor([2.0], dtype=torch.float16)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0]))
    assert out["n"].item() == 5 and out["h"].dtype == torch.float16 and out["h"].item() == 1.5
    assert torch.equal(average_state_dicts([a])["w"], a["w"])
    with pytest.raises(ValueError, match=r"states\[1\]: keys differ"):
        average_state_dicts([a, {"w": b["w"], "n": b["n"]}])
    with pytest.raises(ValueError, match=r"states\[1\]\['w'\]: shape"):
        average_state_dicts([a, {**b, "w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="at least one"):
        average_state_dicts([])


def test_averaged_weights_load_and_name_their_ingredients(tmp_path):
    config = PreprocessConfig(input_size=32)
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for seed, path in enumerate(paths):
        _write(path, seed, config)
    out = average_weights(paths, tmp_path / "soup" / "mean.pt")
    model = load_heading_model(out, fast=False)  # loads: same network, JSON beside it
    a, b = (torch.load(p, weights_only=True) for p in paths)
    key = "head.1.weight"
    assert torch.allclose(model.network.state_dict()[key], (a[key] + b[key]) / 2)
    training = json.loads(config_path_for(out).read_text())["extra"]["training"]
    assert "model soup" in training["method"]
    assert [i["sha256"] for i in training["ingredients"]] == [file_sha256(p) for p in paths]
    assert [i["training"] for i in training["ingredients"]] == [{"seed": 0}, {"seed": 1}]
    assert training["started_from"] == {"sha256": "start"}  # the common start, once


def test_average_refuses_what_does_not_fit(tmp_path):
    config = PreprocessConfig(input_size=32)
    _write(tmp_path / "a.pt", 0, config)
    with pytest.raises(ValueError, match="two or more"):
        average_weights([tmp_path / "a.pt"], tmp_path / "out.pt")
    with pytest.raises(ValueError, match="missing.pt: expected a weights file"):
        average_weights([tmp_path / "a.pt", tmp_path / "missing.pt"], tmp_path / "out.pt")
    _write(tmp_path / "b.pt", 1, config.replace(bands=("B02", "B03", "B04")))
    with pytest.raises(ValueError, match="b.pt: bands is"):
        average_weights([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "out.pt")
    result = CliRunner().invoke(app, ["average-heading-weights", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"),
                                      "--out", str(tmp_path / "out.pt"), "--no-calibrate"])
    assert result.exit_code == 2 and "bands is" in result.output
    assert not (tmp_path / "out.pt").exists()
    _write(tmp_path / "c.pt", 2, config.replace(detail_channels=4))  # the JSON is read before any tensor
    with pytest.raises(ValueError, match="c.pt: detail_channels is"):
        average_weights([tmp_path / "a.pt", tmp_path / "c.pt"], tmp_path / "out.pt")


def test_faint_range_overrides_parse_or_say_what_is_wrong():
    ranges = ranges_with_overrides(FAINT_RANGES, ["p_glint=0.7", "noise_sigma=0.002,0.004"])
    assert ranges.p_glint == 0.7 and ranges.noise_sigma == (0.002, 0.004)
    assert ranges.length_m == FAINT_RANGES.length_m
    for bad, message in (("glint", "KEY=VALUE"), ("colour=1", "KEY=VALUE"), ("noise_sigma=0.002", "takes 2"),
                         ("p_glint=high", "numbers")):
        with pytest.raises(InputError, match=message):
            ranges_with_overrides(FAINT_RANGES, [bad])
    result = CliRunner().invoke(app, ["train-heading", "--faint-range", "p_glint"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    assert ranges_with_overrides(TRAIN_RANGES, ["p_cloud=0.6"], option="--range").p_cloud == 0.6
    result = CliRunner().invoke(app, ["train-heading", "--range", "p_cloud=often"])
    assert result.exit_code == 2 and "--range 'p_cloud=often': VALUE must be numbers" in result.output


def test_train_heading_names_a_head_it_cannot_build_before_starting_a_run(tmp_path):
    for args in (["--head", "center"], ["--head", "centre"], ["--head", "centre", "--fine-channels", "8",
                                                              "--input-size", "36"],
                 ["--detail-channels", "4", "--fine-channels", "8"]):
        run_dir = tmp_path / "run"
        result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), *args])
        assert result.exit_code == 2 and "--head" in result.output, args
        assert "--detail-channels" not in args or "detail_channels: the stride-4 branch" in result.output
        assert not run_dir.exists()


def test_train_heading_takes_the_network_shape_from_the_init_weights_json(tmp_path):
    centre = PreprocessConfig(output_stride=16, fine_channels=8, head="centre")
    weights = tmp_path / "centre.pt"
    torch.manual_seed(0)
    torch.save(create_model(centre.architecture, len(centre.bands), centre.input_size, 16, 8, "centre").state_dict(), weights)
    centre.to_json(config_path_for(weights))
    assert network_shape(weights) == {"input_size": 64, "output_stride": 16, "fine_channels": 8, "head": "centre", "detail_channels": 0}
    assert network_shape(weights, head="grid", fine_channels=0) == {"input_size": 64, "output_stride": 16, "fine_channels": 0, "head": "grid", "detail_channels": 0}
    detail = tmp_path / "detail.pt"
    centre.replace(detail_channels=4).to_json(config_path_for(detail))
    assert network_shape(detail)["detail_channels"] == 4 and network_shape(detail, detail_channels=0)["detail_channels"] == 0
    assert network_shape(None) == network_shape(tmp_path / "bare.pt") == {"input_size": 64, "output_stride": 32, "fine_channels": 0, "head": "grid", "detail_channels": 0}
    broken = tmp_path / "broken.pt"
    config_path_for(broken).write_text("{not json")
    with pytest.raises(InputError, match="broken.pt: cannot read broken.json"):
        network_shape(broken)

    # "Fine-tune the shipped weights" with no shape flags: a centre-head start builds a centre head.
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), "--init-weights", str(weights),
                                      "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
                                      "--val-count", "4", "--lr", "1e-4"])
    assert result.exit_code == 0, result.output
    state = torch.load(run_dir / "last.pt", weights_only=False)["model"]
    assert "centre_out.weight" in state and not any(k.startswith("head.") for k in state)

    # Resuming takes the shape from the run's own checkpoint: no flags, no --init-weights needed.
    assert network_shape(None, checkpoint=run_dir / "last.pt") == {"input_size": 64, "output_stride": 16, "fine_channels": 8, "head": "centre", "detail_channels": 0}
    # A checkpoint saved before the detail branch existed has no such key: it resumes as 0.
    old = tmp_path / "old_last.pt"
    before = {k: v for k, v in asdict(PreprocessConfig(output_stride=16, fine_channels=8, head="centre")).items()
              if k != "detail_channels"}
    torch.save({"config": {"preprocess": before}}, old)
    assert network_shape(None, checkpoint=old)["detail_channels"] == 0
    small = tmp_path / "small_last.pt"
    torch.save({"config": {"preprocess": asdict(PreprocessConfig(input_size=32, output_stride=16))}}, small)
    assert network_shape(weights, checkpoint=small) == {"input_size": 32, "output_stride": 16, "fine_channels": 0, "head": "grid", "detail_channels": 0}
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), "--epochs", "2", "--steps-per-epoch", "1",
                                      "--batch-size", "2", "--val-count", "4", "--lr", "1e-4"])
    assert result.exit_code == 0, result.output
    assert torch.load(run_dir / "last.pt", weights_only=False)["epoch"] == 2
    # A shape that contradicts the checkpoint is named, not a strict-load traceback.
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), "--epochs", "3", "--steps-per-epoch", "1",
                                      "--batch-size", "2", "--val-count", "4", "--head", "grid", "--fine-channels", "0"])
    assert result.exit_code == 2, result.output
    assert "last.pt: saved with fine_channels=8 (asked: 0), head='centre' (asked: 'grid')" in result.output
    assert torch.load(run_dir / "last.pt", weights_only=False)["epoch"] == 2
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(tmp_path / "r2"), "--init-weights", str(broken)])
    assert result.exit_code == 2 and "broken.json" in result.output


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_run_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    run_dir = tmp_path / "runs" / "new"
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), "--shipwakes", str(tmp_path / "empty"),
                                      "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--val-count", "4"])
    assert result.exit_code == 2 and "empty" in result.output, result.output
    assert not run_dir.exists()
    # A run dir the user made (or an earlier run's) is theirs: it stays.
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(run_dir), "--shipwakes", str(tmp_path / "empty"),
                                      "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--val-count", "4"])
    assert result.exit_code == 2 and (run_dir / "notes.txt").read_text() == "mine"
