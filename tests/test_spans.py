import pytest
import torch

from lighthouse_audio.spans import (
    generalized_temporal_iou,
    paired_generalized_temporal_iou,
    span_cxw_to_xx,
    span_xx_to_cxw,
    temporal_iou,
)


def random_xx(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(*shape, generator=g)
    length = torch.rand(*shape, generator=g) * 0.5 + 1e-3
    return torch.stack([start, start + length], dim=-1)


def test_cxw_xx_hand_values():
    cxw = torch.tensor([[0.5, 1.0], [0.3, 0.2]])
    xx = torch.tensor([[0.0, 1.0], [0.2, 0.4]])
    torch.testing.assert_close(span_cxw_to_xx(cxw), xx)
    torch.testing.assert_close(span_xx_to_cxw(xx), cxw)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
def test_round_trips(shape):
    xx = random_xx(*shape)
    assert span_cxw_to_xx(xx).shape == xx.shape
    torch.testing.assert_close(span_cxw_to_xx(span_xx_to_cxw(xx)), xx)
    cxw = span_xx_to_cxw(xx)
    torch.testing.assert_close(span_xx_to_cxw(span_cxw_to_xx(cxw)), cxw)


def test_iou_hand_values():
    spans1 = torch.tensor([[0.0, 0.2], [0.5, 1.0]])
    spans2 = torch.tensor([[0.0, 0.3], [0.0, 1.0]])
    iou, union = temporal_iou(spans1, spans2)
    torch.testing.assert_close(iou, torch.tensor([[2 / 3, 0.2], [0.0, 0.5]]))
    torch.testing.assert_close(union, torch.tensor([[0.3, 1.0], [0.8, 1.0]]))
    giou = generalized_temporal_iou(spans1, spans2)
    # [0.5, 1] vs [0, 0.3]: disjoint, enclosing 1.0, union 0.8 -> 0 - 0.2 / 1.0
    torch.testing.assert_close(giou, torch.tensor([[2 / 3, 0.2], [-0.2, 0.5]]))


def test_touching_and_disjoint():
    a = torch.tensor([[0.0, 1.0]])
    b = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    iou, _ = temporal_iou(a, b)
    assert iou.tolist() == [[0.0, 0.0]]
    giou = generalized_temporal_iou(a, b)
    torch.testing.assert_close(giou, torch.tensor([[0.0, -0.5]]))


def test_self_iou_is_one():
    xx = random_xx(20)
    iou, union = temporal_iou(xx, xx)
    torch.testing.assert_close(iou.diagonal(), torch.ones(20))
    torch.testing.assert_close(union.diagonal(), xx[:, 1] - xx[:, 0])
    torch.testing.assert_close(generalized_temporal_iou(xx, xx).diagonal(), torch.ones(20))


def test_giou_bounds_and_relation_to_iou():
    a, b = random_xx(50, seed=1), random_xx(40, seed=2) * 3 - 1
    giou = generalized_temporal_iou(a, b)
    iou, _ = temporal_iou(a, b)
    assert giou.shape == (50, 40)
    assert (giou >= -1).all() and (giou <= 1).all()
    assert (giou <= iou + 1e-6).all()
    assert (iou >= 0).all() and (iou <= 1).all()


def test_batched_leading_dims_equal_loop():
    a, b = random_xx(3, 6, seed=3), random_xx(3, 4, seed=4)
    giou = generalized_temporal_iou(a, b)
    iou, union = temporal_iou(a, b)
    assert giou.shape == iou.shape == union.shape == (3, 6, 4)
    for i in range(3):
        assert torch.equal(giou[i], generalized_temporal_iou(a[i], b[i]))
        assert torch.equal(iou[i], temporal_iou(a[i], b[i])[0])


def test_paired_equals_diagonal():
    a, b = random_xx(9, seed=5), random_xx(9, seed=6)
    assert torch.equal(
        paired_generalized_temporal_iou(a, b), generalized_temporal_iou(a, b).diagonal()
    )


def test_giou_gradient():
    a = random_xx(5, seed=7).requires_grad_(True)
    b = random_xx(5, seed=8)
    (1 - paired_generalized_temporal_iou(a, b)).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
