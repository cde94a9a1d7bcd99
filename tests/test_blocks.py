"""Reversible spiking blocks, organised by property: invertibility, gradient equivalence with plain
autograd, BatchNorm statistics, RNG replay, neuron-state reset, float (off-grid) reconstruction
error, exactness guard, memory flat in depth. Labels refer to revsnn/layers/reversible.py."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import revsnn
from revsnn.baselines import spikingjelly_available
from revsnn.layers.reversible import RevBlock, RevSequence, reconstruction_error
from revsnn.nodes.recompute import frozen_running_stats
from revsnn.models import ConvBNNode, rev_spiking_resnet
from revsnn.models.configs import REVRESNET_CONFIGS
from revsnn.analysis.measure import saved_tensor_bytes
from revsnn.nodes.base import ReconstructionError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _assert_rel(a, b, tol=1e-5):
    """|a − b| ≤ tol · max|b| elementwise (relative to the gradient's scale), via assert_close."""
    assert_close(a, b, rtol=0.0, atol=tol * float(b.abs().max().clamp_min(1e-12)))


def _stack(seed, mode="reversible", grid_bits=12, node=revsnn.LIF, n=3, c=4, dropout=0.0):
    torch.manual_seed(seed)

    def sub():
        m = ConvBNNode(c, c, node())
        return nn.Sequential(nn.Dropout(dropout), m) if dropout else m
    return RevSequence([RevBlock(sub(), sub()) for _ in range(n)], grid_bits=grid_bits,
                       mode=mode).train()


def _run(module, x, seed=3):
    xx = x.clone().requires_grad_()
    torch.manual_seed(seed)
    y = module(xx)
    w = torch.randn(y.shape, generator=_gen(4))
    grads = torch.autograd.grad((y * w).sum(), [xx, *module.parameters()])
    return y.detach(), grads


# -- invertibility (E7.1)–(E7.4) -------------------------------------------------------------------
def test_block_inverse_is_exact_on_the_grid():
    stack = _stack(0)
    x = torch.randn(4, 2, 8, 6, 6, generator=_gen(1)) * 2
    assert reconstruction_error(stack, x) == 0.0


def test_float_reconstruction_is_off_by_rounding():
    """Without the grid, Y₂ − G(Y₁) ≠ X₂ in fp32: measured 2.4e-7 (half an ulp at |x| ≈ 4–8)."""
    x = torch.randn(4, 2, 8, 6, 6, generator=_gen(1)) * 2
    err = reconstruction_error(_stack(0, grid_bits=None), x)
    print(f"float reconstruction error {err:.3g}")
    assert 0 < err < 1e-5


# -- gradients equal plain autograd ----------------------------------------------------------------
@pytest.mark.parametrize("node", [revsnn.LIF, lambda: revsnn.LIF(v_reset=None),
                                  revsnn.ReversibleLIF], ids=["lif", "lif_soft", "revlif"])
def test_stack_gradients_equal_plain_autograd(node):
    x = torch.randn(4, 2, 8, 6, 6, generator=_gen(2)) * 1.5
    y_r, g_r = _run(_stack(0, node=node), x)
    y_p, g_p = _run(_stack(0, mode="plain", node=node), x)
    assert torch.equal(y_r, y_p)
    for a, b in zip(g_r, g_p):
        _assert_rel(a, b)


def test_float_mode_gradient_error_is_measured():
    """grid_bits=None: reconstruction off by rounding; gradients then differ by the propagated
    rounding (measured 1.8e-7 here, no spike flipped) — within 1e-5 only while no flip occurs."""
    x = torch.randn(4, 2, 8, 6, 6, generator=_gen(2)) * 1.5
    _, g_r = _run(_stack(0, grid_bits=None), x)
    _, g_p = _run(_stack(0, mode="plain", grid_bits=None), x)
    err = max(_rel_err(a, b) for a, b in zip(g_r, g_p))
    print(f"float-mode gradient relative error {err:.3g}")
    assert err < 1e-3


def test_network_gradients_and_bn_statistics_equal_plain():
    """RevSpikingResNet vs the same network under plain autograd: equal logits and gradients
    (rel ≤ 1e-5) and BatchNorm running statistics equal to those after one plain forward."""
    x = torch.rand(3, 2, 3, 8, 8, generator=_gen(5))
    nets = {m: rev_spiking_resnet("revresnet_s", preset, width=4, num_classes=3)
            for m, preset in (("reversible", "blocks"), ("plain", "bptt"))}
    nets["plain"].load_state_dict(nets["reversible"].state_dict())
    res = {m: _run(n, x) for m, n in nets.items()}
    assert torch.equal(res["reversible"][0], res["plain"][0])
    for a, b in zip(res["reversible"][1], res["plain"][1]):
        _assert_rel(a, b)
    for (name, a), (_, b) in zip(nets["reversible"].named_buffers(), nets["plain"].named_buffers()):
        assert torch.equal(a, b), name
    assert all(int(m.num_batches_tracked) == 1 for m in nets["reversible"].modules()
               if isinstance(m, nn.BatchNorm2d))


def test_dropout_masks_replayed_and_rng_left_as_plain():
    x = torch.randn(3, 2, 8, 5, 5, generator=_gen(6))
    y_r, g_r = _run(_stack(1, dropout=0.3), x)
    rng_r = torch.get_rng_state()
    y_p, g_p = _run(_stack(1, mode="plain", dropout=0.3), x)
    rng_p = torch.get_rng_state()
    assert torch.equal(y_r, y_p)
    for a, b in zip(g_r, g_p):
        _assert_rel(a, b)
    assert torch.equal(rng_r, rng_p)


@pytest.mark.skipif(not spikingjelly_available(), reason="SpikingJelly not installed")
def test_stateful_spikingjelly_nodes_are_reset_between_passes():
    from spikingjelly.activation_based import neuron

    def node():
        return neuron.LIFNode(step_mode="m")
    x = torch.randn(4, 2, 8, 5, 5, generator=_gen(7))
    y_r, g_r = _run(_stack(2, node=node), x)
    y_p, g_p = _run(_stack(2, mode="plain", node=node), x)
    assert torch.equal(y_r, y_p)
    for a, b in zip(g_r, g_p):
        _assert_rel(a, b)


def test_frozen_running_stats_leaves_eval_modules_alone():
    bn = nn.BatchNorm1d(2).eval()
    with frozen_running_stats(bn):
        assert bn.track_running_stats
    assert bn.track_running_stats


# -- exactness guard -------------------------------------------------------------------------------
def test_off_grid_sub_block_is_rejected():
    """F ending in BatchNorm (real-valued output) breaks exact inversion: the forward says so."""
    torch.manual_seed(0)

    def sub():
        return nn.Sequential(nn.Flatten(0, 1), nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2),
                             nn.Unflatten(0, (3, 2)))
    stack = RevSequence([RevBlock(sub(), sub())])
    x = torch.randn(3, 2, 4, 5, 5, generator=_gen(8)).requires_grad_()
    with pytest.raises(ReconstructionError, match="not exactly invertible"):
        stack(x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown variant"):
        rev_spiking_resnet("revresnet_xl")
    with pytest.raises(ValueError, match="even"):
        rev_spiking_resnet("revresnet_s", width=5)
    with pytest.raises(ValueError, match="even C"):
        _stack(0)(torch.zeros(2, 1, 3, 4, 4))


# -- memory ----------------------------------------------------------------------------------------
def test_saved_bytes_flat_in_depth_while_plain_grows_linearly():
    """Saved bytes for backward (parameters and buffers excluded): reversible s → l within 5%,
    plain grows with the number of blocks."""
    x = torch.rand(2, 2, 3, 8, 8, generator=_gen(9)).requires_grad_()
    saved = {}
    for name in REVRESNET_CONFIGS:
        for mode, preset in (("reversible", "blocks"), ("plain", "bptt")):
            torch.manual_seed(0)
            net = rev_spiking_resnet(name, preset, width=4, num_classes=3)
            _, sb = saved_tensor_bytes(net, x, params=[*net.parameters(), *net.buffers()])
            saved[name, mode] = sb.own
    print({f"{k[0]}/{k[1]}": v for k, v in saved.items()})
    rev = [saved[n, "reversible"] for n in REVRESNET_CONFIGS]
    plain = [saved[n, "plain"] for n in REVRESNET_CONFIGS]
    assert max(rev) <= 1.05 * min(rev)
    # plain: equal increments per added block (linear), and far above reversible at depth
    inc1, inc2 = plain[1] - plain[0], plain[2] - plain[1]
    assert inc1 > 0 and inc2 == pytest.approx(2 * inc1, rel=0.05)
    assert plain[2] > 5 * rev[2]
