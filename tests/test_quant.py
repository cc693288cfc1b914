import torch
from torch import nn

from sia.models.blocks import ConvUnit
from sia.quant import QCFS, qcfs, quantize_weight, round_half_up


def test_round_half_up_ties():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999, -2.5001])
    assert round_half_up(x).tolist() == [-2, -1, 0, 1, 2, 3, 2, -3]
    # the rule differs from PyTorch's half-to-even exactly at ties
    assert torch.round(torch.tensor(2.5)).item() == 2


def test_weight_quant_ties_and_range():
    # 4 bit: qmax = 7, s = 7/7 = 1, so w/s hits the ties exactly
    w = torch.tensor([[7.0, 2.5, -2.5, 0.5, -7.0]])
    q, s = quantize_weight(w, 4)
    assert s.item() == 1.0
    assert q.tolist() == [[7, 3, -2, 1, -7]]
    q8, _ = quantize_weight(torch.randn(16, 9) * 5, 8)
    assert q8.abs().max() <= 127          # symmetric range, -128 never used
    qz, sz = quantize_weight(torch.zeros(2, 3), 4)
    assert qz.abs().sum() == 0 and (sz == 1).all()


def test_per_tensor_scale():
    w = torch.tensor([[1.0, -2.0], [4.0, 0.5]])
    q, s = quantize_weight(w, 4, per_channel=False)
    assert s.numel() == 1 and q.abs().max() == 7


def test_qcfs_tie_goes_up():
    theta, L = torch.tensor(2.0), 4
    tie = theta / (2 * L)
    assert qcfs(tie, theta, L).item() == theta.item() / L
    assert qcfs(tie - 1e-4, theta, L).item() == 0.0
    assert qcfs(torch.tensor(100.0), theta, L).item() == theta.item()   # clip at theta
    assert qcfs(torch.tensor(-1.0), theta, L).item() == 0.0


def test_qcfs_straight_through_gradient():
    act = QCFS(4, theta=2.0)
    x = torch.tensor([0.3, 1.1, 5.0], requires_grad=True)
    act(x).sum().backward()
    assert x.grad[0] > 0 and x.grad[1] > 0 and x.grad[2] == 0   # clipped input: no grad
    assert act.theta.grad is not None


def _unit(gamma_sign):
    torch.manual_seed(0)
    u = ConvUnit(3, 6, act=nn.Identity(), weight_bits=None)
    bn = u.bn
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5).mul_(gamma_sign)
    bn.bias.data.uniform_(-1, 1)
    return u.eval()


def test_bn_folding_equivalence():
    x = torch.randn(4, 3, 8, 8)
    for sign in (1.0, -1.0):
        u = _unit(sign)
        before = u(x)
        u.fold_bn()
        assert u.bn is None and u.bias is not None
        torch.testing.assert_close(u(x), before, atol=1e-5, rtol=1e-5)
        u.fold_bn()  # idempotent
        torch.testing.assert_close(u(x), before, atol=1e-5, rtol=1e-5)


def test_fold_preserves_codes():
    """Per-channel quantisation commutes with BN folding (up to the sign of gamma)."""
    for sign in (1.0, -1.0):
        u = _unit(sign)
        gamma = u.bn.weight.detach().clone()
        q0, _ = quantize_weight(u.conv.weight.double(), 4)
        u.fold_bn()
        q1, _ = quantize_weight(u.conv.weight.double(), 4)
        assert torch.equal(q1, q0 * torch.sign(gamma).reshape(-1, 1, 1, 1).double())
