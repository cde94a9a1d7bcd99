"""Every bad input of ``tests/bad_inputs.py`` gets what it should, and ``docs/bad_inputs.md`` is
the table those cases produce now (regenerate: ``.venv/bin/python scripts/bad_inputs_table.py``)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bad_inputs  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_bad_input_gets_a_clear_outcome_and_the_table_is_current():
    text, rows = bad_inputs.generate()
    for case, outcome in rows:
        assert bad_inputs.outcome_kind(outcome) == case.expect, (case.given, outcome)
        assert "Traceback" not in outcome and len(outcome) > len(case.expect) + 20, outcome
    assert bad_inputs.TABLE.read_text(encoding="utf-8") == text, (
        "docs/bad_inputs.md is out of date: run scripts/bad_inputs_table.py")
