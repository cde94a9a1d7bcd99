"""Regenerate ``docs/bad_inputs.md``: every bad input of ``tests/bad_inputs.py`` and what it gets.

    .venv/bin/python scripts/bad_inputs_table.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import bad_inputs  # noqa: E402


def main() -> int:
    text, rows = bad_inputs.generate()
    bad_inputs.TABLE.parent.mkdir(parents=True, exist_ok=True)
    bad_inputs.TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} cases to {bad_inputs.TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
