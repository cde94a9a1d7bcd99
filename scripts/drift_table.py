#!/usr/bin/env python
"""Regenerate ``data/drift_table.csv``: the same as ``python -m revsnn drift --out data/drift_table.csv``.

Extra arguments are passed to ``revsnn drift`` (see ``python -m revsnn drift --help``); without any,
the table is written to ``data/drift_table.csv`` in this repository.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from revsnn.cli import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:] or ["--out", str(ROOT / "data" / "drift_table.csv")]
    raise SystemExit(main(["drift", *argv]))
