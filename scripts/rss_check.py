"""Cross-check the activation peak with the operating system: the growth of a fresh process's peak
resident memory over one training step, parameter gradients allocated beforehand.

Each (mode, T) runs in its own Python process: build the zoo network, allocate every parameter's
gradient, record the peak resident set size (``ru_maxrss``), run one training step (forward,
cross-entropy, backward), record it again. The difference is what the step itself needed at its
peak, as the kernel saw it (allocator caching included, so it is an upper bound of the tensor
bytes that ``act_peak_bytes`` counts).

Usage: python scripts/rss_check.py [--arch vgg11] [--T 8 32] [--modes spikingjelly temporal]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import torch, torch.nn.functional as F
from revsnn.models import build
arch, mode, T, batch, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(1)
model = build(arch, mode, T=T, seed=0)
for p in model.parameters():
    p.grad = torch.zeros_like(p)
g = torch.Generator().manual_seed(1)
x = torch.rand(batch, 3, size, size, generator=g)
y = torch.randint(0, 10, (batch,), generator=g)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
F.cross_entropy(model(x), y).backward()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vgg11")
    parser.add_argument("--T", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["spikingjelly", "fused", "temporal"])
    args = parser.parse_args(argv)
    print(f"peak RSS growth over one training step: {args.arch}, batch {args.batch}, "
          f"{args.image_size}×{args.image_size} (MiB; one fresh process each)")
    for T in args.T:
        growth = {}
        for mode in args.modes:
            out = subprocess.run([sys.executable, "-c", CHILD, args.arch, mode, str(T),
                                  str(args.batch), str(args.image_size)],
                                 capture_output=True, text=True, check=True)
            growth[mode] = json.loads(out.stdout.strip().splitlines()[-1])["growth_kib"] / 1024
        base = growth.get("spikingjelly")
        cells = [f"{m} {v:8.1f}" + (f" ({base / v:.1f}× SJ)" if base and m != "spikingjelly"
                                     and v > 0 else "") for m, v in growth.items()]
        print(f"T={T:<4d} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
