"""Keypoint network and loss: shapes, offsets parameterisation, absent keypoints are ignored, output stride, lateral branch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.metrics import keypoint_heading_deg
from models.network import adapt_state_dict, create_model, keypoint_loss


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model(in_chans=4, input_size=32).eval()


def test_outputs_have_the_documented_shapes(model):
    with torch.inference_mode():
        out = model(torch.randn(3, 4, 32, 32))
    assert out["keypoints"].shape == (3, 4, 2)
    assert out["visibility_logits"].shape == (3, 4)
    assert out["log_kappa"].shape == (3,)
    # The first conv was built for 4 bands (never swapped after the fact).
    assert model.backbone.conv_stem.in_channels == 4


def _fake_outputs(requires_grad=True):
    keypoints = torch.tensor([[[0.0, 0.0], [0.0, 0.5], [0.2, 0.3], [-0.2, 0.3]]] * 2, requires_grad=requires_grad)
    return {
        "keypoints": keypoints,
        "visibility_logits": torch.zeros(2, 4, requires_grad=requires_grad),
        "log_kappa": torch.zeros(2, requires_grad=requires_grad),
    }


def test_loss_ignores_absent_keypoints_whatever_their_target_value():
    visible = torch.tensor([[True, True, False, False], [True, False, False, False]])
    target_a = torch.tensor([[[0.0, 0.0], [0.0, 0.4], [float("nan")] * 2, [float("nan")] * 2],
                             [[0.1, 0.0], [float("nan")] * 2, [float("nan")] * 2, [float("nan")] * 2]])
    target_b = torch.nan_to_num(target_a, nan=-7.0)  # garbage where absent (zeros padding is the naive bug)
    out = _fake_outputs()
    loss_a, _ = keypoint_loss(out, target_a, visible)
    loss_b, _ = keypoint_loss(_fake_outputs(), target_b, visible)
    assert torch.isfinite(loss_a)
    assert math.isclose(loss_a.detach().item(), loss_b.detach().item(), rel_tol=1e-6)
    loss_a.backward()
    grad = out["keypoints"].grad
    # No pull on the arm keypoints (absent everywhere) nor on the second chip's wake end.
    assert torch.all(grad[:, 2:] == 0)
    assert torch.all(grad[1, 1] == 0)
    assert torch.any(grad[0, 1] != 0)


def test_loss_rewards_the_right_direction():
    visible = torch.tensor([[True, True, False, False]] * 2)
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0]]] * 2)
    right = _fake_outputs()
    wrong = _fake_outputs()
    wrong["keypoints"] = torch.tensor([[[0.0, 0.0], [0.0, -0.5], [0.2, 0.3], [-0.2, 0.3]]] * 2)
    _, parts_right = keypoint_loss(right, target, visible)
    _, parts_wrong = keypoint_loss(wrong, target, visible)
    assert parts_right["angle"] < 0.01 < 1.9 < parts_wrong["angle"]


def test_heading_is_the_bearing_from_wake_end_to_hull():
    # Hull above the wake end (smaller y): travelling grid-up, heading 0; to the right: 90.
    kp = np.array([[[5.0, 1.0], [5.0, 9.0]], [[9.0, 5.0], [1.0, 5.0]], [[1.0, 1.0], [9.0, 9.0]]])
    np.testing.assert_allclose(keypoint_heading_deg(kp), [0.0, 90.0, 315.0])


def test_a_finer_output_stride_keeps_the_backbone_and_spreads_the_head_over_the_finer_cells(model):
    fine = create_model(in_chans=4, input_size=32, output_stride=16).eval()
    assert fine.feature_size == 2 * model.feature_size
    fine.load_state_dict(adapt_state_dict(model.state_dict(), fine))
    for name, tensor in model.backbone.state_dict().items():
        assert torch.equal(tensor, fine.backbone.state_dict()[name])
    # On features constant within each coarse cell the adapted head answers like the original.
    torch.manual_seed(1)
    coarse = torch.randn(2, 96, model.feature_size, model.feature_size)
    fine_features = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    with torch.inference_mode():
        torch.testing.assert_close(fine.head(fine_features), model.head(coarse), rtol=1e-5, atol=1e-5)
        assert fine(torch.randn(1, 4, 32, 32))["keypoints"].shape == (1, 4, 2)
    # Same stride: nothing to adapt; grids that do not nest: a clear error.
    state = model.state_dict()
    assert adapt_state_dict(state, model) is state
    odd = create_model(in_chans=4, input_size=48, output_stride=16)  # 3 x 3 cells cannot split 2 x 2 ones
    with pytest.raises(ValueError, match="does not nest"):
        adapt_state_dict(create_model(in_chans=4, input_size=64).state_dict(), odd)
    with pytest.raises(ValueError, match="output_stride"):
        create_model(output_stride=12)


def test_a_lateral_stride_8_branch_starts_silent_so_weights_without_it_answer_unchanged(model):
    wide = create_model(in_chans=4, input_size=32, fine_channels=8).eval()
    assert wide.fine_head.weight.shape == (256, 8 * 4 * 4)  # 32 px crop: 4 x 4 cells at stride 8
    wide.load_state_dict(adapt_state_dict(model.state_dict(), wide))
    x = torch.randn(2, 4, 32, 32)
    with torch.inference_mode():
        before, after = model(x), wide(x)
        for key in before:
            torch.testing.assert_close(after[key], before[key])
        # Once trained (here: any non-zero weights) the branch feeds the head.
        torch.nn.init.normal_(wide.fine_head.weight, std=0.05)
        assert not torch.allclose(wide(x)["keypoints"], before["keypoints"])
    # The branch's own trained tensors are kept, not reset, when they are present.
    trained = wide.state_dict()
    fresh = create_model(in_chans=4, input_size=32, fine_channels=8)
    assert torch.equal(adapt_state_dict(trained, fresh)["fine_head.weight"], trained["fine_head.weight"])
    with pytest.raises(ValueError, match="fine_channels"):
        create_model(fine_channels=-1)


class _FixedMaps(torch.nn.Module):
    """Stands in for the centre head's last conv: returns the given per-cell maps for any input."""

    def __init__(self, maps: torch.Tensor) -> None:
        super().__init__()
        self.maps = maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(x.shape[0], -1, -1, -1)


def test_the_centre_head_reads_every_output_where_its_soft_arg_max_puts_the_hull():
    centre = create_model(in_chans=4, input_size=32, output_stride=16, fine_channels=8, head="centre").eval()
    size = centre.fine_size  # 32 px crop: 4 x 4 cells of 8 px
    assert size == 4 and not hasattr(centre, "head")
    maps = torch.zeros(1, 14, size, size)
    maps[0, 0] = -30.0
    maps[0, 0, 2, 1] = 30.0  # the hull is in row 2, column 1: centre (-0.25, +0.25) normalised
    maps[0, 1:3, 2, 1] = torch.tensor([0.4, -0.2])  # ... offset from the cell centre, in half cells
    maps[0, 3:9, 2, 1] = torch.tensor([0.0, 0.6, 0.3, 0.5, -0.3, 0.5])  # wake end and arm ends from the hull
    maps[0, 9:13, 2, 1] = torch.tensor([5.0, 4.0, -3.0, 2.0])
    maps[0, 13, 2, 1] = 6.0
    maps[0, 3:, 0, 0] = 9.0  # another cell's answers must not leak in
    centre.centre_out = _FixedMaps(maps)
    with torch.inference_mode():
        out = centre(torch.randn(2, 4, 32, 32))
    hull = torch.tensor([-0.25 + 0.4 / size, 0.25 - 0.2 / size])
    torch.testing.assert_close(out["keypoints"][0, 0], hull)
    torch.testing.assert_close(out["keypoints"][1, 1], hull + torch.tensor([0.0, 0.6]))
    torch.testing.assert_close(out["keypoints"][0, 3], hull + torch.tensor([-0.3, 0.5]))
    torch.testing.assert_close(out["visibility_logits"][0], torch.tensor([5.0, 4.0, -3.0, 2.0]))
    torch.testing.assert_close(out["log_kappa"], torch.tensor([6.0, 6.0]))
    # Wake end straight below the hull (y down): the vessel heads to grid north.
    assert float(keypoint_heading_deg(out["keypoints"][0].numpy())) == pytest.approx(0.0, abs=1e-4)


def test_the_centre_head_starts_from_a_grid_model_s_backbone_and_names_bad_settings(model):
    centre = create_model(in_chans=4, input_size=32, output_stride=32, fine_channels=8, head="centre")
    state = adapt_state_dict(model.state_dict(), centre)
    centre.load_state_dict(state)  # strict: the grid head's tensors are dropped, the centre head's filled in
    for key in ("backbone.conv_stem.weight", "reduce.0.weight", "reduce.1.running_var"):
        assert torch.equal(centre.state_dict()[key], model.state_dict()[key])
    assert not any(key.startswith("head.") for key in state)
    # A stride-8 branch of another width starts fresh instead of failing the strict load.
    wide = create_model(in_chans=4, input_size=32, output_stride=32, fine_channels=16)
    centre.load_state_dict(adapt_state_dict(wide.state_dict(), centre))
    # Weights that are not this backbone (a training checkpoint dict, another band count) are named.
    with pytest.raises(ValueError, match="backbone"):
        adapt_state_dict({"model": model.state_dict()}, centre)
    with pytest.raises(ValueError, match="backbone"):
        adapt_state_dict(create_model(in_chans=3, input_size=32).state_dict(), centre)
    with pytest.raises(ValueError, match="input_size"):
        create_model(input_size=36, fine_channels=8, head="centre")
    with pytest.raises(ValueError, match="fine_channels"):
        create_model(head="centre")
    with pytest.raises(ValueError, match="head"):
        create_model(fine_channels=8, head="heatmap")


def test_a_stride_4_detail_branch_starts_silent_then_changes_the_answer_and_names_bad_settings():
    torch.manual_seed(0)
    centre = create_model(in_chans=4, input_size=32, output_stride=16, fine_channels=8, head="centre").eval()
    detail = create_model(in_chans=4, input_size=32, output_stride=16, fine_channels=8, head="centre",
                          detail_channels=4).eval()
    state = adapt_state_dict(centre.state_dict(), detail)
    detail.load_state_dict(state)  # strict: the branch the weights lack is filled in as built
    assert torch.count_nonzero(detail.detail_fuse.weight) == 0
    x = torch.randn(3, 4, 32, 32)
    with torch.inference_mode():
        before, after = centre(x), detail(x)
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)
    # The branch is wired in: once its last layer is not zero, the answer moves.
    with torch.no_grad():
        detail.detail_fuse.weight.normal_(std=0.1)
    with torch.inference_mode():
        moved = detail(x)
    assert not torch.allclose(moved["keypoints"], before["keypoints"])
    # Trained weights with the branch load into a model with it and carry it over.
    again = create_model(in_chans=4, input_size=32, output_stride=16, fine_channels=8, head="centre", detail_channels=4)
    again.load_state_dict(adapt_state_dict(detail.state_dict(), again))
    assert torch.equal(again.detail_fuse.weight, detail.detail_fuse.weight)
    with pytest.raises(ValueError, match="detail_channels.*centre"):
        create_model(fine_channels=8, detail_channels=4)
    with pytest.raises(ValueError, match="detail_channels"):
        create_model(fine_channels=8, head="centre", detail_channels=-1)


def test_the_wakeless_term_pulls_only_wakeless_chips_toward_an_ambiguous_heading():
    # Chip 0 has a wake, chip 1 only a hull: the term must lower chip 1's concentration and leave chip 0's alone.
    visible = torch.tensor([[True, True, False, False], [True, False, False, False]])
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0]]] * 2)
    plain, with_term = _fake_outputs(), _fake_outputs()
    loss_plain, _ = keypoint_loss(plain, target, visible)
    loss_term, parts = keypoint_loss(with_term, target, visible, wakeless_kappa_weight=0.5)
    assert math.isclose(loss_term.item() - loss_plain.item(), 0.5 * math.log1p(1.0), rel_tol=1e-6)  # kappa = e^0
    assert math.isclose(parts["wakeless_kappa"], math.log1p(1.0), rel_tol=1e-6)
    loss_plain.backward()
    loss_term.backward()
    added = with_term["log_kappa"].grad - plain["log_kappa"].grad
    assert added[0] == 0 and added[1] > 0  # gradient descent lowers log kappa on the wakeless chip only
    # The pull on log kappa stays below the weight however confident the chip is (log1p, not log I0).
    confident = _fake_outputs()
    confident["log_kappa"] = torch.tensor([0.0, 9.0], requires_grad=True)
    keypoint_loss(confident, target, visible, wakeless_kappa_weight=0.5)[0].backward()
    assert 0.49 < confident["log_kappa"].grad[1] < 0.5
