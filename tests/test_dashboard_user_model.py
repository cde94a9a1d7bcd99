"""The Architectures and Budget pages measure a network of the user's own, named by a
``module:factory`` string, side by side with the zoo (tiny CPU runs)."""

import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the dashboard package
from dashboard import data  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
MODEL = '''
from revsnn.conversion import examples

def tiny_vgg(num_classes, in_channels):
    return examples.plain_vgg((8, "M", 16, "M"), num_classes, in_channels)
'''


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.setenv(data.RUNS_ENV, str(tmp_path / "runs"))
    path = tmp_path / "mine.py"
    path.write_text(MODEL)
    return f"{path}:tiny_vgg"


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def test_architectures_measures_a_user_model_next_to_the_zoo(spec, tmp_path):
    at = _page("views/architectures.py")
    at.multiselect(key="network_archs").set_value(["convnet"])
    at.text_input(key="network_user_model").input(spec).run()
    assert not at.error, _errors(at)
    temporal = "Time-major binary LIF (temporal)"
    assert temporal in at.multiselect(key="network_modes").options      # rebuilt time-major
    at.multiselect(key="network_modes").set_value(["LIF (BPTT)", "ReversibleLIF (fused)",
                                                   temporal])
    at.number_input(key="network_image_size").set_value(8)
    at.number_input(key="network_repeats").set_value(1)
    at.number_input(key="network_warmup").set_value(0)
    at.text_input(key="network_T").input("2")
    at.text_input(key="network_batch").input("2")
    at.button(key="network_measure").click().run()
    assert not at.exception, at.exception
    assert not at.error, _errors(at)
    saved = pd.read_csv(next((tmp_path / "runs").glob("network-*.csv")))
    assert set(saved["status"]) == {"ok"}, saved[["arch", "mode", "error"]]
    assert set(saved["arch"]) == {"convnet", spec}
    assert set(saved.loc[saved["arch"] == spec, "mode"]) == {"bptt", "fused", "temporal"}


def test_a_bad_model_string_is_an_error_message(spec):
    at = _page("views/architectures.py")
    at.text_input(key="network_user_model").input(spec.replace("tiny_vgg", "nope")).run()
    assert "Your model:" in _errors(at) and "has no 'nope'" in _errors(at)


def test_budget_searches_a_user_model(spec, tmp_path):
    at = _page("views/budget.py")
    at.text_input(key="budget_user_model").input(spec).run()
    assert "Time-major binary LIF (temporal)" in at.multiselect(key="budget_modes").options
    at.multiselect(key="budget_modes").set_value(["ReversibleLIF (fused)"])
    at.select_slider(key="budget_bytes").set_value(2 ** 22)
    at.multiselect(key="budget_searches").set_value(["batch"])
    at.number_input(key="budget_T").set_value(2)
    at.number_input(key="budget_image_size").set_value(8)
    at.button(key="budget_measure").click().run()
    assert not at.exception, at.exception
    assert not at.error, _errors(at)
    saved = pd.read_csv(next((tmp_path / "runs").glob("budget-*.csv")))
    assert list(saved["arch"]) == [spec] and int(saved["max_value"].iloc[0]) >= 1
