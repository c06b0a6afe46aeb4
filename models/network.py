"""The wake-keypoint network: a timm EfficientNet-B0 backbone and a keypoint regression head.

Outputs, for a batch of ``(N, C, S, S)`` normalised crops:

* ``keypoints`` ``(N, 4, 2)``: ``(x, y)`` normalised to the crop (``-1`` left/top edge, ``+1``
  right/bottom edge), order hull, wake_end, arm_left_end, arm_right_end. The head predicts the hull
  and the *offsets* of the other points from it, so the wake direction is a first-class output.
* ``visibility_logits`` ``(N, 4)``: whether each keypoint is present.
* ``log_kappa`` ``(N,)``: log concentration of a von Mises distribution over the heading, trained
  by negative log-likelihood; ``1 / sqrt(kappa)`` is the heading sigma in radians.

With ``fine_channels > 0`` the head also reads the backbone's stride-8 features (8 x 8 cells for a
64 px crop, where a 10-25 m hull is still its own pixel or two) through a lateral branch whose last
layer starts at zero, so weights trained without it load and answer unchanged (a warm start).

With ``head="centre"`` (which needs the stride-8 features) a soft arg-max over the stride-8 cells
places the hull and every other output is read from per-cell maps under the same weights, so the
answer moves with a vessel that sits off the chip centre; it warm-starts from a grid model's backbone.
With ``detail_channels > 0`` the centre head also reads the stride-4 features (16 x 16 for a 64 px
crop, where a 1-2 px hull is still its own feature), folded onto the stride-8 cells (space to
depth) and added to the fused cell features through a convolution that starts at zero: weights
trained without it load and answer unchanged.

The backbone is built with ``pretrained=False`` (nothing downloads) and ``in_chans`` set directly,
so the first convolution is created for the chip bands instead of being swapped after the fact.
"""

from __future__ import annotations

import math

import timm
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["WakeKeypointNet", "adapt_state_dict", "check_head", "create_model", "create_model_for", "keypoint_loss"]

NUM_KEYPOINTS = 4
HEADS = ("grid", "centre")


def check_head(head: str, fine_channels: int, input_size: int, output_stride: int = 32, detail_channels: int = 0) -> None:
    """Raise ``ValueError`` naming the setting when the network cannot be built with these settings."""
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride: expected 8, 16 or 32, got {output_stride}")
    if fine_channels < 0:
        raise ValueError(f"fine_channels: expected >= 0, got {fine_channels}")
    if head not in HEADS:
        raise ValueError(f"head: expected one of {HEADS}, got {head!r}")
    if head == "centre" and not fine_channels:
        raise ValueError("fine_channels: the centre head reads the stride-8 features, expected > 0, got 0")
    if head == "centre" and input_size % 8:
        raise ValueError(f"input_size: the centre head's cells are 8 px, expected a multiple of 8, got {input_size}")
    if detail_channels < 0:
        raise ValueError(f"detail_channels: expected >= 0, got {detail_channels}")
    if detail_channels and head != "centre":
        raise ValueError(f"detail_channels: the stride-4 branch feeds the centre head, got head={head!r}")


def _stage_index(backbone: nn.Module, reduction: int, architecture: str) -> int:
    """Position in ``backbone.feature_info`` of the features at ``reduction`` (stride), or ``ValueError`` naming the architecture."""
    index = next((i for i, info in enumerate(backbone.feature_info) if info["reduction"] == reduction), None)
    if index is None:
        raise ValueError(f"architecture: {architecture!r} has no stride-{reduction} stage for the head's branch")
    return index


class WakeKeypointNet(nn.Module):
    """EfficientNet backbone + spatial keypoint head (see module docstring for the outputs)."""

    def __init__(self, architecture: str = "efficientnet_b0", in_chans: int = 4, input_size: int = 64,
                 drop_rate: float = 0.1, output_stride: int = 32, fine_channels: int = 0, head: str = "grid",
                 detail_channels: int = 0) -> None:
        super().__init__()
        check_head(head, fine_channels, input_size, output_stride, detail_channels)
        # output_stride < 32 dilates the last stages instead of striding them: the same weights see
        # a finer grid (4 x 4 instead of 2 x 2 cells for a 64 px crop at 16).
        self.backbone = timm.create_model(
            architecture, pretrained=False, in_chans=in_chans, num_classes=0, global_pool="", drop_rate=drop_rate,
            output_stride=output_stride,
        )
        feature_size = max(1, math.ceil(input_size / output_stride))
        self.feature_size = feature_size
        channels = self.backbone.num_features
        # Keep the coarse spatial layout (a global pool would throw away where things are).
        self.reduce = nn.Sequential(nn.Conv2d(channels, 96, 1), nn.BatchNorm2d(96), nn.SiLU())
        if head == "grid":
            self.head = nn.Sequential(
                nn.Flatten(),
                nn.Linear(96 * feature_size * feature_size, 256),
                nn.SiLU(),
                nn.Dropout(drop_rate),
                nn.Linear(256, NUM_KEYPOINTS * 2 + NUM_KEYPOINTS + 1),
            )
        self.input_size = input_size
        self.fine_channels = fine_channels
        self.fine_index: int | None = None  # position in backbone.feature_info of the stride-8 features
        if fine_channels:
            self.fine_index = _stage_index(self.backbone, 8, architecture)
            fine_size = max(1, math.ceil(input_size / 8))
            in_chs = self.backbone.feature_info[self.fine_index]["num_chs"]
            self.fine_reduce = nn.Sequential(nn.Conv2d(in_chs, fine_channels, 1), nn.BatchNorm2d(fine_channels), nn.SiLU())
            if head == "grid":
                self.fine_head = nn.Linear(fine_channels * fine_size * fine_size, 256, bias=False)
                nn.init.zeros_(self.fine_head.weight)
        self.head_kind = head
        if head == "centre":
            # Stride-16/32 context upsampled onto the stride-8 grid, fused with the stride-8 features;
            # per cell: hull logit, hull offset from the cell centre (x, y, in half cells), offsets of the other three
            # keypoints from the hull, their visibility logits and log kappa.
            self.fine_size = fine_size
            self.centre_fuse = nn.Sequential(
                nn.Conv2d(96 + fine_channels, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.SiLU(),
                nn.Dropout2d(drop_rate),
            )
            self.centre_out = nn.Conv2d(128, 1 + 2 + (NUM_KEYPOINTS - 1) * 2 + NUM_KEYPOINTS + 1, 1)
            centres = (torch.arange(self.fine_size, dtype=torch.float32) + 0.5) * (2.0 / self.fine_size) - 1.0
            gy, gx = torch.meshgrid(centres, centres, indexing="ij")
            self.register_buffer("cell_xy", torch.stack([gx.flatten(), gy.flatten()], dim=-1), persistent=False)
        self.detail_channels = detail_channels
        self.detail_index: int | None = None  # position in backbone.feature_info of the stride-4 features
        if detail_channels:
            self.detail_index = _stage_index(self.backbone, 4, architecture)
            in_chs = self.backbone.feature_info[self.detail_index]["num_chs"]
            self.detail_reduce = nn.Sequential(nn.Conv2d(in_chs, detail_channels, 1), nn.BatchNorm2d(detail_channels), nn.SiLU())
            self.detail_fuse = nn.Conv2d(4 * detail_channels, 128, 3, padding=1, bias=False)
            nn.init.zeros_(self.detail_fuse.weight)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Backbone features (stride ``output_stride``) and, with the lateral branches, those of stride 8 and 4."""
        if self.fine_index is None:
            return self.backbone(x), None, None
        if self.detail_index is None:
            final, (fine,) = self.backbone.forward_intermediates(x, indices=[self.fine_index])
            return self.backbone.forward_head(final), fine, None
        final, (detail, fine) = self.backbone.forward_intermediates(x, indices=[self.detail_index, self.fine_index])
        return self.backbone.forward_head(final), fine, detail

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        coarse, fine, detail = self._features(x)
        if self.head_kind == "centre":
            return self._centre_outputs(coarse, fine, detail)
        hidden = self.head[1](self.head[0](self.reduce(coarse)))
        if fine is not None:
            hidden = hidden + self.fine_head(torch.flatten(self.fine_reduce(fine), 1))
        out = self.head[2:](hidden)
        n = out.shape[0]
        points = out[:, : NUM_KEYPOINTS * 2].reshape(n, NUM_KEYPOINTS, 2)
        hull = points[:, :1]
        keypoints = torch.cat([hull, hull + points[:, 1:]], dim=1)
        return {
            "keypoints": keypoints,
            "visibility_logits": out[:, NUM_KEYPOINTS * 2 : NUM_KEYPOINTS * 3],
            "log_kappa": out[:, -1].clamp(-4.0, 12.0),
        }

    def _centre_outputs(self, coarse: torch.Tensor, fine: torch.Tensor, detail: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Centre head: a soft arg-max over the stride-8 cells finds the hull; the other outputs are read
        from per-cell maps under the same weights, so a shifted vessel shifts the answer with it. With the
        detail branch each cell's fused features also get its 2 x 2 stride-4 features (space to depth)."""
        size = self.fine_size
        context = F.interpolate(self.reduce(coarse), size=(size, size), mode="bilinear", align_corners=False)
        cells = self.centre_fuse(torch.cat([context, self.fine_reduce(fine)], dim=1))
        if detail is not None:
            # Each 8 px cell gets its 2 x 2 stride-4 features side by side (space to depth).
            cells = cells + self.detail_fuse(F.pixel_unshuffle(self.detail_reduce(detail), 2))
        maps = self.centre_out(cells)
        maps = maps.flatten(2)  # (N, channels, cells)
        weight = torch.softmax(maps[:, 0], dim=-1)  # (N, cells)
        hull = self.cell_xy + maps[:, 1:3].transpose(1, 2) / size  # (N, cells, 2); a cell is 2 / size wide
        hull = torch.einsum("nc,ncd->nd", weight, hull)
        read = torch.einsum("nc,nkc->nk", weight, maps[:, 3:])
        n = read.shape[0]
        offsets = read[:, : (NUM_KEYPOINTS - 1) * 2].reshape(n, NUM_KEYPOINTS - 1, 2)
        keypoints = torch.cat([hull[:, None], hull[:, None] + offsets], dim=1)
        rest = read[:, (NUM_KEYPOINTS - 1) * 2 :]
        return {
            "keypoints": keypoints,
            "visibility_logits": rest[:, :NUM_KEYPOINTS],
            "log_kappa": rest[:, -1].clamp(-4.0, 12.0),
        }


def create_model(
    architecture: str = "efficientnet_b0", in_chans: int = 4, input_size: int = 64, output_stride: int = 32,
    fine_channels: int = 0, head: str = "grid", detail_channels: int = 0,
) -> WakeKeypointNet:
    """Build the network (random initialisation; load a state_dict for trained weights)."""
    return WakeKeypointNet(architecture, in_chans=in_chans, input_size=input_size, output_stride=output_stride,
                           fine_channels=fine_channels, head=head, detail_channels=detail_channels)


def create_model_for(config) -> WakeKeypointNet:
    """The network a :class:`models.preprocess.PreprocessConfig` describes (its architecture, bands,
    input size, output stride, branches and head), randomly initialised."""
    return create_model(config.architecture, len(config.bands), config.input_size, config.output_stride,
                        config.fine_channels, config.head, config.detail_channels)


def adapt_state_dict(state: dict[str, torch.Tensor], model: WakeKeypointNet) -> dict[str, torch.Tensor]:
    """Fit weights trained at a coarser output stride to ``model`` (a finer grid of head cells).

    The backbone's tensors do not depend on the stride. The head's first linear layer reads the
    flattened ``(channels, g, g)`` grid: each coarse cell's weights are shared equally among the finer
    cells it covers, so on features that are constant within a coarse cell the adapted model
    answers exactly like the original (a warm start for fine-tuning). A lateral stride-8 branch
    (``fine_channels``) or stride-4 detail branch (``detail_channels``) the weights lack starts as
    built, its last layer zero: the model answers exactly like the weights without it.

    Raises
    ------
    ValueError
        When the grids do not nest (the finer edge is not a multiple of the coarser one).
    """
    own = model.state_dict()
    if model.head_kind == "centre":
        # The backbone and its 1x1 reduction carry over; a grid head's layers have no place here.
        unfit = [k for k, v in own.items() if k.startswith(("backbone.", "reduce.")) and
                 (k not in state or state[k].shape != v.shape)]
        if unfit:
            raise ValueError(f"state: {len(unfit)} backbone tensors missing or of another shape, e.g. {unfit[0]}")
        kept = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        return {**{k: v for k, v in own.items() if k not in kept}, **kept}
    branch = {k: v for k, v in own.items() if k.startswith("fine_") and k not in state}
    if branch:
        state = {**branch, **state}
    key = "head.1.weight"
    target = own[key]
    weight = state.get(key)
    if weight is None or weight.shape == target.shape:
        return state
    out_features, channels = weight.shape[0], model.reduce[0].out_channels
    coarse = int(round(math.sqrt(weight.shape[1] / channels)))
    fine = model.feature_size
    if coarse * coarse * channels != weight.shape[1] or fine % coarse or target.shape != (out_features, channels * fine * fine):
        raise ValueError(f"state: {key} of shape {tuple(weight.shape)} does not nest into {tuple(target.shape)}")
    factor = fine // coarse
    grid = weight.reshape(out_features, channels, coarse, coarse)
    grid = grid.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3) / (factor * factor)
    return {**state, key: grid.reshape(out_features, -1).contiguous()}


def keypoint_loss(
    outputs: dict[str, torch.Tensor],
    keypoints: torch.Tensor,
    visible: torch.Tensor,
    *,
    angle_weight: float = 1.0,
    kappa_weight: float = 0.05,
    wakeless_kappa_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss that ignores absent keypoints.

    The heading's von Mises concentration ``kappa`` is fitted on the chips with a wake. On chips
    with a hull and no wake there is no direction to learn; ``wakeless_kappa_weight`` pulls their
    ``kappa`` toward 0 (large sigma: the heading is flagged ambiguous) with ``mean log1p(kappa)``,
    which falls with ``kappa`` like the uniform direction's NLL ``log I0(kappa)`` but pulls with
    less than unit force on ``log kappa`` (an over-confident chip does not swamp the other terms).

    Parameters
    ----------
    outputs : dict
        The network's outputs.
    keypoints : torch.Tensor
        ``(N, 4, 2)`` true coordinates normalised like the outputs; values at absent keypoints are
        never read (they may be NaN).
    visible : torch.Tensor
        ``(N, 4)`` bool.

    Returns
    -------
    tuple
        Scalar loss and a dict of its parts (floats, for logging).
    """
    visible = visible.bool()
    target = torch.nan_to_num(keypoints, nan=0.0)
    pred = outputs["keypoints"]
    hull_loss = F.smooth_l1_loss(pred[:, 0], target[:, 0], beta=0.02, reduction="none").sum(-1)
    hull_loss = (hull_loss * visible[:, 0]).sum() / visible[:, 0].sum().clamp(min=1)

    offsets_pred = pred[:, 1:] - pred[:, :1]
    offsets_true = target[:, 1:] - target[:, :1]
    mask = visible[:, 1:] & visible[:, :1]
    offset_loss = F.smooth_l1_loss(offsets_pred, offsets_true, beta=0.02, reduction="none").sum(-1)
    offset_loss = (offset_loss * mask).sum() / mask.sum().clamp(min=1)

    visibility_loss = F.binary_cross_entropy_with_logits(outputs["visibility_logits"], visible.float())

    # Direction of the wake (what the heading is made of), independent of its length.
    wake = mask[:, 0]
    cos_err = F.cosine_similarity(offsets_pred[:, 0], offsets_true[:, 0], dim=-1, eps=1e-6)
    # Chord length 2|sin(err/2)| ~ |err| in radians: an L1-like pull that stays firm near zero error.
    chord = torch.sqrt((2.0 * (1.0 - cos_err)).clamp(min=0.0) + 1e-8)
    angle_loss = (chord * wake).sum() / wake.sum().clamp(min=1)
    kappa = outputs["log_kappa"].exp()
    # von Mises negative log-likelihood of the (detached) angular error; log I0(k) = log(i0e(k)) + k.
    nll = -kappa * cos_err.detach() + torch.log(torch.special.i0e(kappa)) + kappa + 0.5 * math.log(2 * math.pi)
    kappa_loss = (nll * wake).sum() / wake.sum().clamp(min=1)
    wakeless = visible[:, 0] & ~visible[:, 1]
    wakeless_kappa_loss = (torch.log1p(kappa) * wakeless).sum() / wakeless.sum().clamp(min=1)

    loss = (hull_loss + offset_loss + visibility_loss + angle_weight * angle_loss + kappa_weight * kappa_loss
            + wakeless_kappa_weight * wakeless_kappa_loss)
    parts = {
        "hull": float(hull_loss.detach()),
        "offset": float(offset_loss.detach()),
        "visibility": float(visibility_loss.detach()),
        "angle": float(angle_loss.detach()),
        "kappa": float(kappa_loss.detach()),
        "wakeless_kappa": float(wakeless_kappa_loss.detach()),
    }
    return loss, parts
