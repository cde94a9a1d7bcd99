"""Equation labels: each label has exactly one meaning, and every label cited is defined.

A label such as (E2.5) is *defined* where it is written in front of its equation:

- in the library's NOTE blocks and docstrings, a line that starts with the label
  (``    (E2.5)  S₂ = Θ(H₂ − θ); …`` or ``- (E1.1) charge, …:  H[t] = …``);
- in a notebook's markdown, a table row ``| (E2.5) | … | S₂ = Θ(H₂ − θ); … |``, its equation
  usually written in LaTeX (``$S_2 = \\Theta(H_2 - \\theta)$``), read back to the same Unicode
  text (:func:`unlatex`);
- in a README, a line that starts with labelled equations, ``(E2.1) H1 = V1 + …   (E2.2) …``.

The meaning of a definition is its first clause ``lhs = rhs`` (up to the first ``,``, ``;``, ``∈``,
run of spaces or the end of the cell), compared after removing spaces, writing subscript digits
as digits, ``−`` as ``-`` and X̄_g as q(X_g) (E2.0) (the README writes q(X1) for X̄₁). Every label
must have one home module in ``revsnn/`` and one meaning across all of its definitions, and every
label cited anywhere (code comments, notebooks, READMEs, tests) must be defined in the library.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "revsnn").rglob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
READMES = [ROOT / "README.md", ROOT / "notebooks" / "README.md", ROOT / "data" / "README.md"]
TESTS = sorted((ROOT / "tests").glob("test_*.py"))
# files that write labels which deliberately do not exist (a sentinel such as (E9.99))
NOT_CITING = {"test_notebooks.py", "test_labels.py"}

LABEL = r"\(E\d+\.(?:\d+|[A-Z]\d+)\)"
LIB_DEF = re.compile(rf"^\s*(?:-\s+)?({LABEL})[ \t]+(.*)$", re.M)   # not "(E1.1), (E1.4)"
TABLE_DEF = re.compile(rf"^#\s*\|\s*({LABEL})\s*\|(.*)\|\s*$", re.M)
README_DEF = re.compile(rf"({LABEL})\s+(\S[^(]*?\S\s+=\s+.*?)(?=\s{{2,}}\(E|$)", re.M)
CITED = re.compile(r"(?<![A-Za-z0-9])E(\d+)\.(\d+|[A-Z]\d+|\*)")
FIRST_CLAUSE_END = re.compile(r",\s|;|\s∈|\s{2,}|\s+and\s|\.\s*$|$")
SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


_LATEX_SYMBOLS = {
    r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\delta": "δ", r"\epsilon": "ε",
    r"\varepsilon": "ε", r"\vartheta": "ϑ", r"\theta": "θ", r"\Theta": "Θ", r"\tau": "τ",
    r"\mu": "μ", r"\sigma": "σ", r"\lambda": "λ", r"\sum": "Σ", r"\nabla": "∇",
    r"\partial": "∂", r"\cdot": "·", r"\leftarrow": "←", r"\lfloor": "⌊", r"\rfloor": "⌋",
    r"\in": "∈", r"\left": "", r"\right": "", r"\quad": "  ", r"\;": " ", r"\,": "",
}
_SUPERSCRIPTS = {r"\top": "ᵀ", "2": "²", "-1": "⁻¹"}


def unlatex(text: str) -> str:
    """The inline LaTeX of a notebook table, ``$H_1 = V_1 + q(\\beta \\cdot \\bar{X}_1)$``, as the
    Unicode text the library writes, ``H1 = V1 + q(β · X̄1)`` (subscript digits as digits)."""
    text = text.replace("$", "")
    text = re.sub(r"\\(?:mathrm|operatorname|text)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\bar\{([^{}]*)\}", lambda m: m[1] + "\u0304", text)
    text = re.sub(r"\\hat\{([^{}]*)\}", lambda m: m[1] + "\u0302", text)
    text = re.sub(r"\\sqrt\{([^{}]*)\}", r"√(\1)", text)
    text = text.replace(r"\mathrel{+}=", "+=")
    for cmd in sorted(_LATEX_SYMBOLS, key=len, reverse=True):
        text = re.sub(re.escape(cmd) + r"(?![A-Za-z])", _LATEX_SYMBOLS[cmd], text)
    text = re.sub(r"\^\{([^{}]*)\}|\^(\S)",
                  lambda m: _SUPERSCRIPTS.get(m[1] or m[2], "^" + (m[1] or m[2])), text)
    text = re.sub(r"_\{(\d+)\}|_(\d)", lambda m: m[1] or m[2], text)      # H_1 -> H1
    return re.sub(r"_\{([\w()]+)\}", r"_\1", text)                      # V_{reset} -> V_reset


def meaning(text: str) -> str | None:
    """``lhs=rhs`` of the first equation in ``text`` (normalised), or None if it has none."""
    if "$" in text:
        text = unlatex(text)
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"``[^`]*``|`[^`]*`", "", text)          # ``decay_input=True`` is no equation
    m = re.search(r"\s(=|\+=|←)\s", text)                  # H = …, S̄ += …, V̄ ← …
    if m is None:
        return None
    lhs = re.split(r"[:|]", text[:m.start()])[-1].strip()
    rest = text[m.end():].strip()
    rhs = rest[:FIRST_CLAUSE_END.search(rest).start()]
    eq = f"{lhs}{m.group(1)}{rhs}".translate(SUBSCRIPTS).replace("−", "-")
    eq = re.sub(r"\s+", "", eq)
    return re.sub(r"X\u0304(\d|_g)(?!\u0304)", r"q(X\1)", eq)   # (E2.0) X̄_g = q(X_g)


def definitions(library: dict, notebooks: dict, readmes: dict) -> list:
    """``(label, file, kind, meaning)`` of every defining occurrence in the ``{name: text}`` maps."""
    found = []
    for name, text in library.items():
        for label, rest in LIB_DEF.findall(text):
            eq = meaning(rest)
            if eq is not None:
                found.append((label, name, "library", eq))
    for name, text in notebooks.items():
        for label, cells in TABLE_DEF.findall(text):
            eqs = [meaning(c) for c in cells.split("|")]
            eqs = [e for e in eqs if e is not None]
            if eqs:
                found.append((label, name, "notebook", eqs[-1]))
    for name, text in readmes.items():
        for line in re.findall(rf"^{LABEL}.*$", text, re.M):
            for label, rest in README_DEF.findall(line):
                eq = meaning(rest)
                if eq is not None:
                    found.append((label, name, "readme", eq))
    return found


def collisions(found) -> dict:
    """Labels with more than one home module in the library, or more than one meaning."""
    bad = {}
    for label in sorted({d[0] for d in found}):
        defs = [d for d in found if d[0] == label]
        homes = {d[1] for d in defs if d[2] == "library"}
        meanings = {d[3] for d in defs}
        if len(homes) != 1 or len(meanings) != 1:
            bad[label] = sorted({(d[1], d[3]) for d in defs})
    return bad


def _read(paths) -> dict:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths if p.is_file()}


@pytest.fixture(scope="module")
def found():
    return definitions(_read(LIBRARY), _read(NOTEBOOKS), _read(READMES))


def test_definitions_are_found(found):
    """The extractor sees the labels of every equation family, in the library and in notebooks."""
    labels = {d[0] for d in found}
    families = {re.match(r"\(E(\d+)\.", label).group(1) for label in labels}
    assert {"1", "2", "3", "4", "5", "6", "7"} <= families, sorted(labels)
    assert {"(E3.N1)", "(E2.B1)"} <= labels                   # the lettered variants too
    assert {d[2] for d in found} == {"library", "notebook", "readme"}
    assert ("(E2.1)", "revsnn/functional/reversible.py", "library",
            "H1=V1+q(β·q(X1))-q(a·V2)") in found
    assert ("(E1.1)", "notebooks/01_lif_and_bptt_memory.py", "notebook",
            "H[t]=V[t-1]+(X[t]-(V[t-1]-V_reset))/τ") in found


def test_each_label_has_one_meaning(found):
    """Each (Ex.y) is defined in exactly one library module, and every definition of it (NOTE
    blocks, notebook tables, README) states the same equation."""
    assert collisions(found) == {}


def test_latex_reads_as_the_library_writes_it():
    """A LaTeX table cell has the meaning of the Unicode equation it renders."""
    pairs = [
        (r"$H_1 = V_1 + q(\beta \cdot \bar{X}_1) - q(a \cdot V_2)$", "H₁ = V₁ + q(β·X̄₁) − q(a·V₂)"),
        (r"$S[t] = \Theta(H[t] - V_{\mathrm{th}})$", "S[t] = Θ(H[t] − V_th)"),
        (r"$\mathrm{BN}_t(Z_t) = \gamma \cdot (Z_t - \mu_t)/\sqrt{\sigma^2_t + \epsilon} + \beta$",
         "BN_t(Z_t) = γ·(Z_t − μ_t)/√(σ²_t + ε) + β"),
        (r"$\bar{S}_{\mathrm{src}(u)}[t] \mathrel{+}= f_u'^{\top} \bar{X}_u[t], \quad x$",
         "S̄_src(u)[t] += f_u'ᵀ X̄_u[t],  x"),
        (r"$\mu_t = \mathrm{mean}_{B,H,W}\, Z_t, \quad \sigma^2_t$", "μ_t = mean_{B,H,W} Z_t,   σ²_t"),
    ]
    for latex, unicode in pairs:
        assert meaning(latex) == meaning(unicode) is not None, (latex, meaning(latex))
    assert meaning(r"$H_1 = V_1 + q(\beta \cdot \bar{X}_2)$") != meaning("H₁ = V₁ + q(β·X̄₁)")


def test_notebook_tables_are_latex():
    """The labelled equations of the notebooks render as LaTeX (each table row's last cell)."""
    rows = [(label, cells) for p in NOTEBOOKS for label, cells in
            TABLE_DEF.findall(p.read_text(encoding="utf-8")) if meaning(cells.split("|")[-1])]
    assert len(rows) >= 30
    plain = [label for label, cells in rows if "$" not in cells.split("|")[-1]]
    assert not plain, plain


def test_a_label_with_two_meanings_is_caught():
    """The check fails on a collision: the same label for two equations, or in two modules."""
    lib = {"a.py": '"""\n    (E9.1)  m = ⌊(x̂ − V + c) / τ⌋     the leak\n"""',
           "b.py": '"""\n    (E9.1)  x̂ = (x − μ)·σ⁻¹,    z = γ·x̂ + β\n"""'}
    assert set(collisions(definitions(lib, {}, {}))) == {"(E9.1)"}
    # one module, but a notebook table that gives the label another equation
    nb = {"nb.py": "# | (E9.1) | R = (x̂ − V + c) − τ·m |\n"}
    assert set(collisions(definitions({"a.py": lib["a.py"]}, nb, {}))) == {"(E9.1)"}
    # the same equation written with other spacing and ∈-suffix is one meaning
    nb = {"nb.py": "# | (E9.1) | m = ⌊(x̂ − V + c)/τ⌋, the leak |\n"}
    assert collisions(definitions({"a.py": lib["a.py"]}, nb, {})) == {}


def test_every_cited_label_is_defined(found):
    """A label cited in code comments, notebooks, READMEs or tests is defined in the library;
    a wildcard such as (E5.*) names a family that exists."""
    defined = {d[0] for d in found if d[2] == "library"}
    families = {re.match(r"\(E(\d+)\.", label).group(1) for label in defined}
    texts = {**_read(LIBRARY), **_read(NOTEBOOKS), **_read(READMES),
             **_read(p for p in TESTS if p.name not in NOT_CITING)}
    missing = set()
    for name, text in texts.items():
        for family, item in CITED.findall(text):
            if item == "*":
                ok = family in families
            else:
                ok = f"(E{family}.{item})" in defined
            if not ok:
                missing.add((f"E{family}.{item}", name))
    assert not missing, sorted(missing)
