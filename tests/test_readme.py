"""The README: the paper it builds on, a two-command quick start that says where the dashboard is
served, pictures that exist, and one notation for the naive coupling across the project."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, title
    return match.group(1)


def test_the_paper_is_cited():
    assert "Towards Zero Memory Footprint Spiking Neural Network Training" in README
    assert "Bin Lei, Sheng Lin, Pei-Hung Lin, Chunhua Liao and\nCaiwen Ding" in README
    assert "arXiv:2308.08649" in README


def test_quick_start_is_two_commands_and_says_where_to_open_the_dashboard():
    quick = _section("Quick start")
    assert re.findall(r"```bash\n(.*?)\n```", quick, re.S) == ["make dashboard", "make test"]
    assert "<http://127.0.0.1:8501>" in quick and "open" in quick
    assert re.search(r"about\s+2\.2 GB", quick) and "minutes" in quick


def test_where_to_start_and_terms():
    start = _section("Where to start")
    assert "notebooks/01_lif_and_bptt_memory.py" in start and "Nodes" in start
    terms = _section("Terms")
    assert "**memopt**" in terms and "spikingjelly.activation_based.memopt" in terms
    assert "**Beyond the paper**" in terms


def test_every_picture_and_page_the_readme_links_exists():
    targets = re.findall(r"\]\((docs/[^)]+)\)", README)
    pictures = {t for t in targets if t.endswith(".png")}
    assert len(pictures) == 5, targets              # one screenshot per dashboard page
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, missing


def test_one_notation_for_the_naive_coupling():
    texts = [README, (ROOT / "notebooks" / "README.md").read_text("utf-8")]
    texts += [p.read_text("utf-8") for p in (ROOT / "notebooks").glob("*.py")]
    texts += [p.read_text("utf-8") for p in (ROOT / "dashboard").rglob("*.py")]
    texts += [p.read_text("utf-8") for p in (ROOT / "revsnn").rglob("*.py")]
    assert not [t for t in texts if "V̂ = V + H(1 − S)" in t]
    assert "V̂ = αV + H(1 − S)" in README
