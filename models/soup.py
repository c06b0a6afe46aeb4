"""Weight averaging ("model soup") of heading-model fine-tunes that started from the same weights.

Fine-tunes of one model from one starting point stay in one basin of the loss, so the plain mean of
their weights is itself a good model, usually better than each of them, and it costs nothing at
inference: the same network, one forward pass (Wortsman et al., "Model soups", ICML 2022). Here it
averages exported weights (plain state_dicts with their preprocessing JSON beside them).

The averaged model's sigma scales and wake threshold are not the mean of the ingredients': refit
them (``vesselwatch calibrate-heading``, or ``average-heading-weights``, which calibrates by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from models.inference import config_path_for
from models.preprocess import PreprocessConfig
from models.train import NETWORK_FIELDS, weights_record

__all__ = ["average_state_dicts", "average_weights"]

#: Preprocessing fields that must agree for weights to be averaged (the network and what it reads).
_MUST_MATCH = NETWORK_FIELDS + ("fallback_band", "normalization", "eps", "keypoint_names")


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform mean of state_dicts with the same keys and shapes.

    Floating-point tensors (weights, BatchNorm running statistics) are averaged in float64 and cast
    back to their dtype; integer buffers (``num_batches_tracked``) are taken from the first.

    Raises
    ------
    ValueError
        When ``states`` is empty, or a state's keys or a tensor's shape differ from the first's.
    """
    if not states:
        raise ValueError("states: expected at least one state_dict, got none")
    first = states[0]
    for i, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys():
            missing, extra = sorted(first.keys() - state.keys()), sorted(state.keys() - first.keys())
            raise ValueError(f"states[{i}]: keys differ from states[0] (missing {missing[:3]}, extra {extra[:3]})")
        for key, value in first.items():
            if state[key].shape != value.shape:
                raise ValueError(f"states[{i}][{key!r}]: shape {tuple(state[key].shape)}, states[0] has {tuple(value.shape)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in first.items():
        if value.is_floating_point():
            mean = torch.stack([state[key].double() for state in states]).mean(dim=0)
            out[key] = mean.to(value.dtype).contiguous()
        else:
            out[key] = value.clone()
    return out


def average_weights(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Average exported weights files into ``out`` (state_dict) and write its JSON beside it.

    The JSON is the first ingredient's preprocessing with the calibration fields left as they were
    (refit them for the averaged weights) and ``extra.training`` naming every ingredient with its
    SHA-256 and training record (their common start, when they share one, once as ``started_from``).

    Parameters
    ----------
    paths : sequence of path
        Two or more ``.pt`` state_dicts, each with its ``.json`` beside it, fine-tuned from the same start.
    out : path
        Where to write the averaged ``.pt``; ``out`` with suffix ``.json`` gets the preprocessing.

    Raises
    ------
    ValueError
        Fewer than two ingredients, a missing file, preprocessing that differs in what the network
        reads (architecture, bands, input size, normalisation, output stride, lateral or detail branch), or weights that do not fit together.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"paths: expected two or more weights files to average, got {len(paths)}")
    configs = []
    for path in paths:
        if not path.is_file() or not config_path_for(path).is_file():
            raise ValueError(f"{path}: expected a weights file with its JSON ({config_path_for(path).name}) beside it")
        configs.append(PreprocessConfig.from_json(config_path_for(path)))
    for path, config in zip(paths[1:], configs[1:]):
        for name in _MUST_MATCH:
            if getattr(config, name) != getattr(configs[0], name):
                raise ValueError(f"{path}: {name} is {getattr(config, name)!r}, {paths[0]} has {getattr(configs[0], name)!r}")
    states = [torch.load(path, map_location="cpu", weights_only=True) for path in paths]
    try:
        averaged = average_state_dicts(states)
    except ValueError as error:
        raise ValueError(f"{', '.join(map(str, paths))}: {error}") from error
    training = {"method": f"uniform weight average (model soup) of {len(paths)} fine-tunes from the same start"}
    ingredients = [weights_record(path) for path in paths]
    starts = [(record.get("training") or {}).get("started_from") for record in ingredients]
    if starts[0] is not None and all(start and start.get("sha256") == starts[0].get("sha256") for start in starts):
        # One common start (same file contents): record it once, not once per ingredient.
        training["started_from"] = starts[0]
        for record in ingredients:
            record["training"] = {k: v for k, v in record["training"].items() if k != "started_from"}
    training["ingredients"] = ingredients
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(averaged, out)
    configs[0].replace(extra={**configs[0].extra, "training": training}).to_json(config_path_for(out))
    return out
