"""The shipped heading weights match their model card: size cap, SHA-256, head and wake threshold."""

from __future__ import annotations

import re
from pathlib import Path

from models.inference import config_path_for, file_sha256
from models.preprocess import PreprocessConfig

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"
WEIGHTS = WEIGHTS_DIR / "wake_keypoints_b0.pt"
CARD = WEIGHTS_DIR / "MODEL_CARD.md"


def _card_row(name: str) -> str:
    """The text of the model card's table row whose first cell starts with ``name``."""
    for line in CARD.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {name}"):
            return line
    raise AssertionError(f"{CARD}: no table row starting with {name!r}")


def test_shipped_weights_fit_the_20_mb_cap_and_the_card_states_their_size():
    size_mb = WEIGHTS.stat().st_size / 1e6
    assert size_mb <= 20.0, size_mb
    stated = re.search(r"state_dict, ([0-9.]+) MB", _card_row("File"))
    assert stated, "the card's File row names the size in MB"
    assert abs(float(stated.group(1)) - size_mb) < 0.05, (stated.group(1), size_mb)


def test_the_card_names_the_shipped_weights_hash_first():
    first = re.search(r"`([0-9a-f]{64})`", _card_row("SHA-256"))
    assert first, "the card's SHA-256 row starts with a full hash"
    assert first.group(1) == file_sha256(WEIGHTS)


def test_the_card_states_the_shipped_head_and_wake_threshold():
    config = PreprocessConfig.from_json(config_path_for(WEIGHTS))
    assert f'head = "{config.head}"' in _card_row("Architecture")
    assert f"wake_probability_threshold = {config.wake_probability_threshold:g}" in _card_row("Calibration")
