"""ONNX export and the ONNX Runtime fast path of the wake-keypoint model.

:func:`export_onnx` writes the network (dynamic batch axis) with the legacy TorchScript-based
exporter, which needs no extra package. :func:`enable_fast_path` exports once into a cache keyed by
the weights' SHA-256, opens an ONNX Runtime session and keeps it only if it reproduces the eager
outputs on a deterministic check batch within :data:`TOLERANCE`; otherwise it raises and the model
stays eager. :func:`quantize_int8` produces a statically quantised (QDQ, per-channel) variant for
measurement; it is never the default unless its accuracy has been shown to hold.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.inference import HeadingModel, file_sha256
from models.preprocess import prepare_batch

__all__ = ["TOLERANCE", "export_onnx", "enable_fast_path", "check_batch", "max_output_difference", "quantize_int8"]

logger = logging.getLogger(__name__)

#: Largest allowed difference between ONNX Runtime and eager outputs: keypoints (normalised
#: units; 1e-3 is 0.03 px on a 64 px crop), visibility logits and log-kappa.
TOLERANCE = {"keypoints": 1e-3, "visibility_logits": 1e-2, "log_kappa": 1e-2}
OUTPUT_NAMES = ("keypoints", "visibility_logits", "log_kappa")


class _TupleOutputs(torch.nn.Module):
    """The network with its dict of outputs flattened to a tuple (what ONNX graphs return)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.network(x)
        return out["keypoints"], out["visibility_logits"], out["log_kappa"]


def export_onnx(model: HeadingModel, path: str | Path, opset: int = 17) -> Path:
    """Write ``model.network`` as ONNX with input ``input (N, C, S, S)`` and a dynamic batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config
    dummy = torch.zeros(2, len(config.bands), config.input_size, config.input_size)
    wrapped = _TupleOutputs(model.network.eval().to(memory_format=torch.contiguous_format)).eval()
    # A name of its own per call: threads or processes warming the same cache never write into
    # each other's half-written file; the atomic rename makes whichever finishes last win whole.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx")
    os.close(handle)
    tmp = Path(temporary)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                wrapped, (dummy,), str(tmp), input_names=["input"], output_names=list(OUTPUT_NAMES),
                dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}},
                opset_version=opset, dynamo=False, do_constant_folding=True,
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        model.network.to(memory_format=torch.channels_last)
    return path


def check_batch(model: HeadingModel, count: int = 32, seed: int = 20240601) -> np.ndarray:
    """A deterministic batch of preprocessed synthetic chips for comparing backends."""
    from models.wake_chips import BAND_NAMES, draw_chips

    chips = draw_chips(seed, count, size=model.config.input_size)
    inputs, _ = prepare_batch(chips["data"], BAND_NAMES, model.config)
    return inputs


def max_output_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest absolute difference of each output between two backends."""
    return {name: float(np.max(np.abs(np.asarray(a[name]) - np.asarray(b[name])))) for name in OUTPUT_NAMES}


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _cache_dir() -> Path:
    from vesselwatch.settings import Settings

    return Settings().var_dir / "cache" / "heading"


def enable_fast_path(model: HeadingModel, *, threads: int | None = None, cache_dir: Path | None = None,
                     onnx_path: Path | None = None) -> HeadingModel:
    """Attach a verified ONNX Runtime session to ``model`` (in place) and return it.

    Raises
    ------
    RuntimeError
        When the ONNX outputs differ from eager beyond :data:`TOLERANCE` (the model stays eager).
    """
    if onnx_path is None:
        digest = file_sha256(model.weights_path)[:16]
        onnx_path = (cache_dir or _cache_dir()) / f"{model.weights_path.stem}-{digest}.onnx"
        if not onnx_path.exists():
            export_onnx(model, onnx_path)
            logger.info("exported %s", onnx_path)
    session = _session(Path(onnx_path), threads)
    inputs = check_batch(model)
    model.session = None
    eager = model.run(inputs)
    model.session = session
    fast = model.run(inputs)
    diff = max_output_difference(eager, fast)
    if any(diff[name] > TOLERANCE[name] for name in OUTPUT_NAMES):
        model.session = None
        raise RuntimeError(f"ONNX Runtime outputs differ from eager beyond tolerance: {diff}")
    return model


def quantize_int8(model: HeadingModel, fp32_onnx: Path, int8_onnx: Path, calibration_count: int = 256) -> Path:
    """Statically quantise an exported model to int8 (QDQ, per-channel) with synthetic calibration chips."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    inputs = check_batch(model, count=calibration_count, seed=777)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{"input": inputs[i : i + 16]} for i in range(0, len(inputs), 16)])

        def get_next(self):
            return next(self._batches, None)

    prepared = Path(int8_onnx).with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared), str(int8_onnx), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )
    prepared.unlink(missing_ok=True)
    return Path(int8_onnx)
