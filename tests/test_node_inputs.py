"""Bad inputs to the nodes: each gets a ValueError naming the problem (and the fix) at the call that
caused it, or is supported; function transforms (vmap, grad, jvp) and torch.compile."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import revsnn
from revsnn import ReconstructionError, ReversibleLIF
from revsnn.nodes.base import check_exact_range
from revsnn.nodes.binary import BinaryReversibleLIF

MODES = ("autograd", "revnet", "fused")
RECONSTRUCTING = ("revnet", "fused")


def _x(*shape, scale=1.5, seed=0, dtype=torch.float32):
    return (torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale).to(dtype)


# -- initial states ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_off_grid_initial_state_is_refused_naming_the_grid(mode):
    node = ReversibleLIF(backward=mode)
    x = _x(4, 2, 8)
    state = (torch.full((2, 4), 0.1), torch.zeros(2, 4))       # 0.1 is not a multiple of 2^-12
    with pytest.raises(ValueError, match=r"V₁ is not on the node's fixed-point grid \(multiples of "
                                         r"2\^-12 .*snap_state"):
        node(x, state=state)


@pytest.mark.parametrize("mode", RECONSTRUCTING)
def test_snapped_initial_state_trains_and_inverts_bit_exactly(mode):
    node = ReversibleLIF(backward=mode)
    x = _x(6, 2, 8).requires_grad_()
    state = node.snap_state((_x(2, 4, seed=1), _x(2, 4, seed=2)))
    y, final = node(x, state=state, return_state=True)
    y.sum().backward()                                            # no ReconstructionError
    x_rec, (v1, v2) = node.inverse(y.detach(), final)
    assert torch.equal(x_rec, node.quantize_input(x.detach()))
    assert torch.equal(v1, state[0]) and torch.equal(v2, state[1])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_initial_state_is_refused(mode, bad):
    node = ReversibleLIF(backward=mode)
    v = torch.zeros(2, 4)
    v[1, 2] = bad
    with pytest.raises(ValueError, match=r"initial state V₂ contains non-finite values"):
        node(_x(4, 2, 8), state=(torch.zeros(2, 4), v))


def test_state_that_is_not_a_pair_is_refused():
    with pytest.raises(ValueError, match="state must be a pair of tensors"):
        ReversibleLIF()(_x(4, 2, 8), state=torch.zeros(2, 4))


# -- the range the backward needs --------------------------------------------------------------
@pytest.mark.parametrize("mode", RECONSTRUCTING)
@pytest.mark.parametrize("sigma", [500.0, 800.0, 1200.0])
def test_forward_refuses_inputs_whose_membranes_leave_the_exact_range(mode, sigma):
    # every |x| is inside the input bound (2046 in fp32); the membranes they drive are not
    node = ReversibleLIF(backward=mode)
    x = _x(16, 4, 32, scale=sigma).clamp(-2045, 2045).requires_grad_()
    with pytest.raises(ValueError, match=r"membranes reach .*float64 or lower grid_bits"):
        node(x)


@pytest.mark.parametrize("seed", range(8))
def test_inputs_the_forward_accepts_never_fail_in_backward(seed):
    # the forward's check is sufficient: whatever it lets through, the backward reconstructs
    g = torch.Generator().manual_seed(seed)
    scale = float(torch.empty(()).uniform_(0.0, 3.4, generator=g).exp())   # 1 … 30
    x = (torch.randn(12, 2, 16, generator=g) * scale * 20).clamp(-2045, 2045)
    node = ReversibleLIF(backward=("fused", "revnet")[seed % 2])
    try:
        y = node(x.requires_grad_())
    except ValueError:
        return
    y.sum().backward()
    ref = x.detach().clone().requires_grad_()
    ReversibleLIF(backward="autograd")(ref).sum().backward()
    assert_close(x.grad, ref.grad, rtol=1e-5, atol=1e-5)


def test_autograd_mode_does_not_check_membranes():
    # plain BPTT reconstructs nothing: large membranes are no error there
    x = _x(16, 4, 32, scale=800.0).clamp(-2045, 2045).requires_grad_()
    ReversibleLIF(backward="autograd")(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# -- shapes and devices ------------------------------------------------------------------------
@pytest.mark.parametrize("node", [ReversibleLIF(), BinaryReversibleLIF(), revsnn.LIF()],
                         ids=lambda n: type(n).__name__)
@pytest.mark.parametrize("shape,dim", [((3, 2, 0), "channel"), ((3, 2, 4, 0), "spatial"),
                                       ((3, 2, 4, 5, 0), "spatial")])
def test_zero_size_neuron_dimensions_are_refused(node, shape, dim):
    with pytest.raises(ValueError, match=f"the {dim} dimension .* has size 0"):
        node(torch.empty(shape))


@pytest.mark.parametrize("make", [lambda: ReversibleLIF(backward="fused"),
                                  lambda: ReversibleLIF(backward="revnet"),
                                  lambda: ReversibleLIF(backward="autograd"),
                                  lambda: BinaryReversibleLIF()])
def test_meta_tensors_give_the_output_shape(make):
    y = make()(torch.empty(3, 2, 4, 5, device="meta"))
    assert y.device.type == "meta" and y.shape == (3, 2, 4, 5)


# -- in-place changes after the node -----------------------------------------------------------
@pytest.mark.parametrize("mode", RECONSTRUCTING)
@pytest.mark.parametrize("after", [lambda y: nn.ReLU(inplace=True)(y), lambda y: y.mul_(2)],
                         ids=["ReLU(inplace=True)", "mul_"])
def test_in_place_change_of_the_output_names_cause_and_fix(mode, after):
    x = _x(4, 2, 8).requires_grad_()
    y = ReversibleLIF(backward=mode)(x)
    after(y)
    with pytest.raises(ReconstructionError, match=r"modified in place .*nn.ReLU\(inplace=True\)"
                                                  r".*clone the output"):
        y.sum().backward()


def test_in_place_change_of_a_binary_nodes_saved_input_names_cause_and_fix():
    x = _x(4, 2, 8).requires_grad_()
    z = x * 1.0
    y = BinaryReversibleLIF()(z)
    z.mul_(2)
    with pytest.raises(ReconstructionError, match="modified in place"):
        y.sum().backward()


# -- binary nodes in half precision ------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backward", ["fused", "autograd"])
def test_binary_node_default_grid_works_in_half_precision(dtype, backward):
    x32 = _x(8, 4, 64, scale=1.5).to(dtype).float()              # values representable in dtype
    xh = x32.to(dtype).requires_grad_()
    yh = BinaryReversibleLIF(backward=backward)(xh)
    x32.requires_grad_()
    y32 = BinaryReversibleLIF(backward=backward)(x32)
    assert yh.dtype == dtype and torch.equal(yh.float(), y32)    # the same spikes as in fp32
    w = _x(8, 4, 64, seed=3)
    (yh.float() * w).sum().backward()
    (y32 * w).sum().backward()
    assert xh.grad.dtype == dtype
    assert_close(xh.grad.float(), x32.grad.to(dtype).float(), rtol=1e-2, atol=1e-3)


def test_binary_node_half_precision_range_names_the_bound():
    with pytest.raises(ValueError, match=r"exact range \|x\| < 1024 for torch.bfloat16"):
        BinaryReversibleLIF()(torch.full((2, 1, 4), 2000.0, dtype=torch.bfloat16))


# -- function transforms -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_vmap_equals_a_loop(mode):
    node = ReversibleLIF(backward=mode)
    xs = _x(3, 5, 2, 8)
    assert_close(torch.vmap(node)(xs), torch.stack([node(x) for x in xs]), rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_vmap_of_grad_equals_per_sample_gradients(mode):
    node = ReversibleLIF(backward=mode)
    xs, w = _x(3, 5, 2, 8), _x(5, 2, 8, seed=1)
    got = torch.vmap(torch.func.grad(lambda x: (node(x) * w).sum()))(xs)
    want = []
    for x in xs:
        x = x.clone().requires_grad_()
        (ReversibleLIF(backward="autograd")(x) * w).sum().backward()
        want.append(x.grad)
    assert_close(got, torch.stack(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_func_grad_equals_autograd(mode):
    node, x, w = ReversibleLIF(backward=mode), _x(5, 2, 8), _x(5, 2, 8, seed=1)
    got = torch.func.grad(lambda z: (node(z) * w).sum())(x)
    ref = x.clone().requires_grad_()
    (ReversibleLIF(backward="autograd")(ref) * w).sum().backward()
    assert_close(got, ref.grad, rtol=1e-5, atol=1e-6)


def test_vmap_range_check_covers_every_batch_entry():
    xs = _x(3, 4, 2, 8)
    xs[2, 1, 0, 3] = 5000.0
    with pytest.raises(ValueError, match="outside the exact range"):
        torch.vmap(ReversibleLIF())(xs)


@pytest.mark.parametrize("node", [ReversibleLIF(backward="autograd"),
                                  BinaryReversibleLIF(backward="autograd")],
                         ids=lambda n: type(n).__name__)
def test_jvp_in_autograd_mode_agrees_with_the_vjp(node):
    x, t, w = _x(5, 2, 8), _x(5, 2, 8, seed=1), _x(5, 2, 8, seed=2)
    _, jt = torch.func.jvp(node, (x,), (t,))
    _, vjp = torch.func.vjp(node, x)
    (jtw,) = vjp(w)
    assert_close((jt * w).sum(), (jtw * t).sum(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("node", [ReversibleLIF(backward="fused"), ReversibleLIF(backward="revnet"),
                                  BinaryReversibleLIF(backward="fused")],
                         ids=lambda n: n.kind)
def test_jvp_of_reconstructing_modes_says_what_to_use(node):
    x = _x(5, 2, 8)
    with pytest.raises(NotImplementedError, match="no forward-mode derivative.*backward='autograd'"):
        torch.func.jvp(node, (x,), (torch.ones_like(x),))


def test_binary_node_under_vmap_says_what_to_do():
    with pytest.raises(ValueError, match="does not run under torch.vmap.*whole batch in one call"):
        torch.vmap(BinaryReversibleLIF())(_x(3, 4, 2, 8))


# -- no host read while compiling ---------------------------------------------------------------
def test_exact_range_check_compiles_without_graph_break():
    f = torch.compile(lambda x: (check_exact_range(x, 4.0, who="N", grid_bits=12,
                                                   remedy="normalise"), x * 2)[1],
                      backend="eager", fullgraph=True)
    assert torch.equal(f(torch.ones(3)), torch.full((3,), 2.0))
    with pytest.raises(RuntimeError, match=r"outside the exact range \|x\| < 4 .*normalise"):
        f(torch.full((3,), 9.0))


@pytest.mark.parametrize("mode", ["autograd", "fused"])
def test_reversible_node_compiles_as_one_graph(mode):
    node = ReversibleLIF(backward=mode)
    compiled = torch.compile(node, backend="eager", fullgraph=True)
    x = _x(4, 2, 8).requires_grad_()
    compiled(x).sum().backward()
    ref = x.detach().clone().requires_grad_()
    ReversibleLIF(backward="autograd")(ref).sum().backward()
    assert_close(x.grad, ref.grad, rtol=1e-5, atol=1e-6)


def test_revnet_mode_under_compile_falls_back_with_correct_gradients():
    # its backward calls torch.autograd.grad, which Dynamo does not trace: a graph break, not a
    # wrong gradient
    node = ReversibleLIF(backward="revnet")
    x = _x(4, 2, 8).requires_grad_()
    torch.compile(node, backend="eager")(x).sum().backward()
    ref = x.detach().clone().requires_grad_()
    ReversibleLIF(backward="autograd")(ref).sum().backward()
    assert_close(x.grad, ref.grad, rtol=1e-5, atol=1e-6)


# -- every strategy under the transforms it cannot support ----------------------------------
def test_checkpointed_node_under_func_grad_says_why_and_what_to_use():
    node = revsnn.make_node("checkpoint")
    with pytest.raises(NotImplementedError, match="saved-tensor hooks.*mode 'bptt'"):
        torch.func.grad(lambda z: node(z).sum())(_x(3, 2, 4))


def test_spikingjelly_node_under_func_transforms_says_what_to_use():
    if not revsnn.strategy.get("spikingjelly").available()[0]:
        pytest.skip("SpikingJelly is not installed")
    node = revsnn.make_node("spikingjelly")
    with pytest.raises(NotImplementedError, match="torch.func transforms.*mode 'bptt'"):
        torch.func.grad(lambda z: node(z).sum())(_x(3, 2, 4))


@pytest.mark.parametrize("mode", ["bptt", "checkpoint", "autograd", "fused", "revnet"])
def test_every_strategy_runs_under_vmap(mode):
    node = revsnn.make_node(mode)
    xs = _x(2, 3, 2, 4)
    assert_close(torch.vmap(node)(xs), torch.stack([node(x) for x in xs]), rtol=0, atol=0)


def test_in_place_change_after_a_fused_bn_node_unit_names_cause_and_fix():
    from revsnn.layers.bn_node import apply_bn_node
    bn, node = nn.BatchNorm2d(4), ReversibleLIF(backward="fused")
    x = _x(3 * 2, 4, 5, 5).requires_grad_()
    y = apply_bn_node(x, bn, node, T=3)
    nn.ReLU(inplace=True)(y)
    with pytest.raises(ReconstructionError, match="BatchNorm \\+ ReversibleLIF backward: .*"
                                                  "modified in place"):
        y.sum().backward()


def test_in_place_change_after_a_reversible_block_names_cause_and_fix():
    from revsnn.layers.reversible import RevBlock, RevSequence
    from revsnn.layers.units import ConvBNNode
    torch.manual_seed(0)
    stack = RevSequence([RevBlock(ConvBNNode(2, 2), ConvBNNode(2, 2))], grid_bits=12).train()
    x = _x(2, 1, 4, 3, 3).requires_grad_()
    y = stack(x)
    y.mul_(2)
    with pytest.raises(ReconstructionError, match="RevBlock backward: .*modified in place"):
        y.sum().backward()
