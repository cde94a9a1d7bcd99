"""Public checks that the reversible node inverts: reconstruction error and flipped spikes.

>>> import torch
>>> from revsnn import ReversibleLIF
>>> r = check_invertible(ReversibleLIF(), torch.randn(32, 4, 8))
>>> r.exact, r.flipped_spikes
(True, 0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..functional.reversible import rev_step_inverse, _split
from ..nodes.reversible import ReversibleLIF

__all__ = ["InvertibilityReport", "check_invertible", "drift_table", "naive_coupling_drift"]


@dataclass(frozen=True)
class InvertibilityReport:
    """Result of walking a sequence forward and back.

    input_error: max |X̄_rec − q(X)| over all steps (0 when exact).
    state_error: max |V_rec(t=0) − V(t=0)|.
    flipped_spikes: recomputed decisions Θ(H − θ) that disagree with the forward's spikes.
    max_membrane: max |V| seen in the forward (boundedness).
    """

    T: int
    dtype: str
    input_error: float
    state_error: float
    flipped_spikes: int
    max_membrane: float

    @property
    def exact(self) -> bool:
        return self.input_error == 0.0 and self.state_error == 0.0 and self.flipped_spikes == 0

    def as_row(self) -> dict:
        return {**asdict(self), "exact": self.exact}


@torch.no_grad()
def check_invertible(node: ReversibleLIF, x: torch.Tensor) -> InvertibilityReport:
    """Run ``node`` forward over ``x``, invert from the output and final state, compare.

    Compares each reconstructed input with the quantised input q(X) the node consumed, the
    reconstructed initial state with zeros, and each recomputed spike with the forward's spike.
    """
    from ..functional.reversible import rev_step
    p = node.params(x.dtype)
    cd = node.compute_dtype(x.dtype)
    v1, v2 = node.initial_state(x)
    states, spikes, vmax = [], [], 0.0
    y = torch.empty_like(x)
    c = x.shape[2] // 2
    for t in range(x.shape[0]):
        x1, x2 = _split(x[t].to(cd))
        y1, y2, v1, v2 = rev_step(x1, x2, v1, v2, p)
        y[t, :, :c], y[t, :, c:] = y1, y2
        spikes.append(torch.cat([y1 != quantize_like(x1, p), y2 != quantize_like(x2, p)], 1))
        vmax = max(vmax, float(v1.abs().max()), float(v2.abs().max()))
    xq = node.quantize_input(x)
    in_err, flips = 0.0, 0
    w1, w2 = v1, v2
    for t in range(x.shape[0] - 1, -1, -1):
        y1, y2 = _split(y[t].to(cd))
        inv = rev_step_inverse(y1, y2, w1, w2, p)
        rec = torch.cat([inv.x1, inv.x2], 1)
        in_err = max(in_err, float((rec - xq[t].to(cd)).abs().max()))
        s_rec = torch.cat([inv.h1 >= p.v_threshold, inv.h2 >= p.v_threshold], 1)
        flips += int((s_rec != spikes[t]).sum())
        w1, w2 = inv.v1, inv.v2
    state_err = max(float(w1.abs().max()), float(w2.abs().max()))
    return InvertibilityReport(int(x.shape[0]), str(x.dtype).replace("torch.", ""), in_err,
                               state_err, flips, vmax)


def quantize_like(x: torch.Tensor, p) -> torch.Tensor:
    return torch.round(x / p.grid) * p.grid


@torch.no_grad()
def naive_coupling_drift(T: int, sigma: float = 1.5, n: int = 4096, alpha: float = 1.0,
                         tau: float = 2.0, v_threshold: float = 1.0, dtype=torch.float32,
                         seed: int = 0) -> dict:
    """The naive reading V̂ = αV + H(1 − S) with H = αV + X/τ, inverted by division.

    (E3.N1) H = αV + X/τ;  S = Θ(H − θ);  V̂ = αV + H(1 − S)
    (E3.N2) inverse given (V̂, X, S): V = (V̂ − (X/τ)(1 − S)) / (α(2 − S))
    Returns the max membrane magnitude and the max reconstruction error of V(0) (fp64 reference
    of the same inputs), showing the growth that the additive design avoids.
    """
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, n, generator=g, dtype=torch.float64) * sigma).to(dtype)
    v = torch.zeros(n, dtype=dtype)
    spikes, vmax = [], 0.0
    for t in range(T):
        h = alpha * v + x[t] / tau
        s = (h >= v_threshold).to(dtype)
        v = alpha * v + h * (1 - s)
        spikes.append(s)
        vmax = max(vmax, float(v.abs().max()))
    for t in range(T - 1, -1, -1):
        s = spikes[t]
        v = (v - (x[t] / tau) * (1 - s)) / (alpha * (2 - s))
    return {"T": T, "dtype": str(dtype).replace("torch.", ""), "max_membrane": vmax,
            "state_error": float(v.abs().max())}


def drift_table(Ts=(4, 8, 16, 32, 64, 128, 256), dtypes=(torch.float64, torch.float32,
                torch.bfloat16), sigma: float = 1.5, batch: int = 16, channels: int = 256,
                seed: int = 0):
    """Reconstruction error and flips of ReversibleLIF (and of the naive coupling) vs T and dtype.

    Returns a pandas DataFrame with one row per (node, T, dtype). The naive coupling has no spike
    record to compare with, so its ``input_error`` and ``flipped_spikes`` are NaN.
    """
    import pandas as pd
    rows = []
    for dtype in dtypes:
        node = ReversibleLIF(on_drift="ignore")
        for T in Ts:
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(T, batch, channels, generator=g) * sigma
            if dtype == torch.bfloat16:
                x = x.clamp(-node.exact_input_bound(dtype) + 1, node.exact_input_bound(dtype) - 1)
            r = check_invertible(node, x.to(dtype))
            rows.append({"node": "ReversibleLIF", "sigma": sigma, **r.as_row()})
            nv = naive_coupling_drift(T, sigma=sigma, n=batch * channels,
                                      dtype=dtype, seed=seed)
            rows.append({"node": "naive coupling", "sigma": sigma, "T": T, "dtype": nv["dtype"],
                         "input_error": float("nan"), "state_error": nv["state_error"],
                         "flipped_spikes": float("nan"), "max_membrane": nv["max_membrane"],
                         "exact": nv["state_error"] == 0.0})
    return pd.DataFrame(rows)
