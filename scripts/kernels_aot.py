"""Compile every Triton kernel of revsnn.kernels ahead of time for a CUDA architecture, with no GPU:
the GPU-only code (CUDA's exp, the compiled bfloat16/float16/float64 paths) must at least build.
Run by tests/test_kernels.py in a subprocess (the interpreter must be off when the kernels are
imported): ``python scripts/kernels_aot.py [ARCH] [--all]``; prints one line per kernel built.
"""

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
import triton  # noqa: E402
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
from revsnn.kernels import fused as K

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
TARGET = GPUTarget("cuda", int(ARGS[0]) if ARGS else 90, 32)
ALL = "--all" in sys.argv        # every dtype; by default fp32 and bf16 (fp64, fp16: one each)
FLOAT = {"fp32": ("*fp32", False, 0, 2.0 ** 23), "fp64": ("*fp64", True, 0, 2.0 ** 52),
         "bf16": ("*i16", False, 1, 2.0 ** 23), "fp16": ("*fp16", False, 0, 2.0 ** 23)}

def build(fn, sig, consts):
    sig = dict(sig)
    for c in consts:
        sig[c] = "constexpr"
    names = fn.arg_names
    sig = {n: sig[n] for n in names}
    return triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=TARGET,
                          options={"enable_fp_fusion": False})

done = []
for dt in (("fp32", "fp64", "bf16", "fp16") if ALL else ("fp32", "bf16", "fp64", "fp16")):
    short = not ALL and dt in ("fp64", "fp16")
    io_ptr, f64, io, magic = FLOAT[dt]
    state = "*fp64" if f64 else "*fp32"
    common = dict(T="i32", P="i32", HS="i32", STEP="i32")
    sig = dict(x_ptr=io_ptr, y_ptr=io_ptr, v1_ptr=state, v2_ptr=state, v1o_ptr=state,
               v2o_ptr=state, prm_ptr=state, **common)
    if not short:
        build(K._rev_forward_kernel, sig, dict(IO=io, F64=f64, MAGIC=magic, BLOCK=1024))
        done.append(f"rev forward {dt}")
    for surr in ((0,) if short else (0, 1)):
        sig = dict(y_ptr=io_ptr, gy_ptr=io_ptr, gx_ptr=io_ptr, v1_ptr=state, v2_ptr=state,
                   gv1_ptr=state, gv2_ptr=state, v1o_ptr=state, v2o_ptr=state, gv1o_ptr=state,
                   gv2o_ptr=state, prm_ptr=state, **common)
        build(K._rev_backward_kernel, sig, dict(IO=io, F64=f64, MAGIC=magic, SURR=surr,
                                                PRECISE=True, BLOCK=1024))
        done.append(f"rev backward {dt} surrogate {surr}")
    ints = dict(T="i32", N="i32", NB="i32", SCALE="fp32", HALF="i32", THETA="i32", TAU="i32")
    for pow2, rb in (() if short else ((True, 1), (False, 2))):
        sig = dict(z_ptr=io_ptr, s_ptr=io_ptr, pk_ptr="*u8", rem_ptr="*u8", v_ptr="*i32", **ints)
        build(K._bin_forward_kernel, sig, dict(IO=io, F64=f64, MAGIC=magic, POW2=pow2,
                                               SHIFT=1 if pow2 else 0, RB=rb, BYTES=128))
        done.append(f"binary forward {dt} pow2={pow2}")
    rd = 0              # the binary VJP computes half precision in fp32 (binary_backward)
    cases = ((False, True, 0), (False, False, 1), (True, True, 1), (True, False, 0))
    for replay, tau2, surr in (cases[1:2] if short else cases):
        sig = dict(z_ptr=io_ptr, gs_ptr=io_ptr, gx_ptr=io_ptr, pk_ptr="*u8", rem_ptr="*u8",
                   v_ptr="*i32", v0_ptr="*i32", cnt_ptr="*i32", hb_ptr="*i32", prm_ptr=state,
                   **ints)
        build(K._bin_backward_kernel, sig, dict(IO=io, F64=f64, MAGIC=magic, POW2=tau2,
                                                SHIFT=1 if tau2 else 0, RB=0 if replay else 2 - tau2,
                                                REPLAY=replay, TAU2=tau2, SURR=surr, PRECISE=True,
                                                RD=rd, BYTES=128))
        done.append(f"binary backward {dt} replay={replay} tau2={tau2}")
print("\n".join(done))
print(len(done), "kernels compiled for", TARGET)
