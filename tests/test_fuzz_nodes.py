"""Hypothesis fuzzing of every node strategy's forward and backward.

Random shapes (zero-size and odd channels included), dtypes, magnitudes, NaN/Inf positions,
initial states and hyperparameters (invalid ones included). The only outcomes allowed:

- a result whose input gradient equals the strategy's autograd reference (1e-5 in fp32/fp64, two
  units of the last place in fp16/bf16, where one rounding of the output already differs by that);
- a ``ValueError`` or :class:`~revsnn.ReconstructionError` whose message starts with the node's
  name and says what is wrong.

Anything else (a ``TypeError``, a ``RuntimeError`` from inside PyTorch, a gradient that differs,
NaN gradients from finite inputs) fails. The run is derandomised (the same cases every time) and
prints how many cases ended in each outcome.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revsnn import ReconstructionError, make_node, strategy
from revsnn.nodes.binary import BinaryReversibleLIF

pytestmark = pytest.mark.usefixtures("one_thread")

PRESETS = [n for n in strategy.names(command="nodes")
           if n != "spikingjelly" or strategy.get(n).available()[0]]
REFERENCE = {"spikingjelly": "bptt", "checkpoint": "bptt", "revnet": "autograd",
             "fused": "autograd", "binary": "binary-autograd", "binary_replay": "binary-autograd"}
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
N_CASES = 600
NAME = re.compile(r"^(LIF|IF|ReversibleLIF|BinaryReversibleLIF|SpikingJellyLIF|make_node|"
                  r"Checkpointed)\b")


def _build(name: str, hp: dict):
    if name == "binary-autograd":
        return BinaryReversibleLIF(backward="autograd", **hp)
    return make_node(name, **hp)


@st.composite
def cases(draw):
    preset = draw(st.sampled_from(PRESETS))
    binary = strategy.get(preset).strategy.node == "binary"
    dtype = draw(st.sampled_from(DTYPES))
    T, B = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rare = st.integers(0, 9).map(lambda k: k == 0)                # True one time in ten
    C = draw(st.sampled_from([0, 1, 3])) if draw(rare) else 2 * draw(st.integers(1, 4))
    spatial = draw(st.lists(st.integers(0, 3) if draw(rare) else st.integers(1, 3), max_size=2))
    shape = (T, B, C, *spatial)
    scale = 10.0 ** (draw(st.floats(1.0, 4.0)) if draw(rare) else draw(st.floats(-2.0, 0.7)))
    nonfinite = draw(st.sampled_from(["nan", "inf", "-inf"])) if draw(rare) else None
    invalid = draw(rare)
    if binary:
        tau = draw(st.integers(-1, 1)) if invalid else draw(st.integers(2, 5))
    else:
        tau = draw(st.floats(-1.0, 1.0)) if invalid else draw(st.floats(1.2, 8.0))
    v_threshold = draw(st.floats(-1.0, 0.0)) if draw(rare) else draw(st.floats(0.2, 3.0))
    hp = {"tau": tau, "v_threshold": v_threshold}
    state = None
    if strategy.get(preset).strategy.node == "reversible":
        state = draw(st.sampled_from([None, None, None, "snapped", "snapped", "off-grid", "nan"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(preset=preset, dtype=dtype, shape=shape, scale=scale, nonfinite=nonfinite, hp=hp,
                state=state, seed=seed)


def _input(case):
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["shape"], generator=g, dtype=torch.float64) * case["scale"]
    if case["nonfinite"] and x.numel():
        x.view(-1)[int(torch.randint(x.numel(), (1,), generator=g))] = float(case["nonfinite"])
    return x.to(case["dtype"])


def _state(case, node, x):
    kind = case["state"]
    if kind is None or x.dim() < 3 or x.shape[2] % 2 or 0 in x.shape:
        return None
    g = torch.Generator().manual_seed(case["seed"] + 1)
    shape = (x.shape[1], x.shape[2] // 2, *x.shape[3:])
    v = tuple(torch.randn(shape, generator=g) * 0.5 for _ in range(2))
    if kind == "snapped":
        return node.snap_state(v, x.dtype)
    if kind == "nan":
        v[0].view(-1)[0] = math.nan
    return v


def _grad(node, x, state, w):
    x = x.clone().requires_grad_()
    y = node(x) if state is None else node(x, state=state)
    (y.to(torch.float64) * w).sum().backward()
    return y.detach(), x.grad


def _run(case, outcomes: Counter):
    name = case["preset"]
    try:
        node = make_node(name, **case["hp"])
        x = _input(case)
        state = _state(case, node, x)
        w = torch.randn(case["shape"], generator=torch.Generator().manual_seed(case["seed"] + 2),
                        dtype=torch.float64)
        y, gx = _grad(node, x, state, w)
    except (ValueError, ReconstructionError) as exc:
        message = str(exc)
        assert NAME.match(message) and len(message) > 20, f"{case}: unclear message {message!r}"
        outcomes[f"{type(exc).__name__}"] += 1
        return
    ref_name = REFERENCE.get(name)
    finite_in = bool(torch.isfinite(x).all())
    if finite_in:
        assert torch.isfinite(gx).all(), f"{case}: non-finite gradient from a finite input"
    if ref_name is None:
        outcomes["ok (is the reference)"] += 1
        return
    ref = _build(ref_name, case["hp"])
    ref_state = None if state is None else tuple(s.clone() for s in state)
    y_ref, g_ref = _grad(ref, x, ref_state, w)
    if case["dtype"] in (torch.float16, torch.bfloat16):
        eps = torch.finfo(case["dtype"]).eps
        tol = dict(rtol=2 * eps, atol=2 * eps * max(1.0, float(g_ref.abs().max().float())))
    else:
        tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, y_ref, equal_nan=True, **tol, msg=lambda m: f"{case}: {m}")
    torch.testing.assert_close(gx, g_ref, equal_nan=True, **tol, msg=lambda m: f"{case}: {m}")
    outcomes["ok (equals the reference)"] += 1


def test_fuzz_every_strategy_forward_and_backward(capsys):
    outcomes: Counter = Counter()

    @settings(max_examples=N_CASES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(cases())
    def check(case):
        _run(case, outcomes)

    check()
    total = sum(outcomes.values())
    with capsys.disabled():
        print(f"\nfuzzed {total} cases: " + ", ".join(f"{k}: {v}" for k, v in
                                                      sorted(outcomes.items())))
    assert total >= N_CASES
    assert outcomes["ok (equals the reference)"] > N_CASES // 5       # not only refusals
    assert outcomes["ValueError"] > 0
