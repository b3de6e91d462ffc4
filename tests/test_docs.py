"""The documentation stays true: README.md and docs/*.md against what they describe.

* Every result figure agrees with its source (``tests/doc_figures.py``: the notebooks'
  recorded results, ``docs/bench.json``, constants of the package). A figure is compared at
  its printed precision, widened by the tolerance of its kind
  (:data:`lastfm_rec.reports.TOLERANCES`), so that a notebook re-executed on another CPU does
  not need new last digits. No number in a covered page goes unchecked unless it is a setting
  rather than a result (:data:`doc_figures.NOT_RESULTS`).
* Every relative link points at a file; every ``lastfm_rec`` name and repository path in a
  code span exists; every ``lastfm-rec`` command line parses; every ``make`` target exists;
  every Python example runs on synthetic data.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from doc_figures import (
    COVERED,
    HEADLINE,
    NOT_RESULTS,
    NUMBER,
    PROSE,
    ROOT,
    TABLES,
    Prose,
    Source,
    Table,
    notebook_results,
)

DOC_FILES = ["README.md", "CHANGELOG.md",
             *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
README_LINES = 160
HEADLINE_LINES = 25


# =========================================================================== reading markdown


def read(file: str) -> str:
    return (ROOT / file).read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)


def without_list_numbers(lines: list[str]) -> Iterator[str]:
    """``lines`` without the numbers of ordered list items (as CommonMark reads them: an item
    follows a blank line or another item, or starts a list with 1)."""
    in_list, previous = False, ""
    for line in lines:
        marker = re.match(r"\s*(\d+)\.\s", line)
        if marker and (not previous.strip() or in_list or marker.group(1) == "1"):
            in_list = True
            line = line[marker.end():]
        elif previous.strip() == "" and not line.startswith(" "):
            in_list = False
        previous = line
        yield line


def prose(file: str) -> str:
    """The running text of ``file``: no code blocks, no table rows, no list numbers,
    whitespace collapsed."""
    lines = [line for line in without_code_blocks(read(file)).splitlines()
             if not line.lstrip().startswith("|")]
    return " ".join(" ".join(without_list_numbers(lines)).split())


def plain(cell: str) -> str:
    """A cell without markdown emphasis or code marks."""
    return " ".join(cell.replace("**", "").replace("*", "").replace("`", "").split())


def tables(file: str) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """``(section heading, header cells, body rows)`` of every table in ``file``."""
    section, block = "", []
    for line in [*without_code_blocks(read(file)).splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if block:
            yield section, block[0], block[2:]
            block = []
        if line.startswith("#"):
            section = line.lstrip("#").strip()


def figure_in(cell: str) -> str | None:
    """The number a table cell starts with (its unit may follow), or None."""
    match = re.match(rf"[~≈]?({NUMBER})", plain(cell))
    return match.group(1) if match else None


# =========================================================================== comparing


def disagreement(printed: str, source: Source) -> str | None:
    """Why ``printed`` does not show ``source``'s value (None when it does)."""
    value = source.read()
    if isinstance(value, str):
        return None if printed == value else f"{source.name} is {value!r}"
    shown = Decimal(printed.replace(",", ""))
    if source.exact:
        return None if float(shown) == float(value) else f"{source.name} is {value!r}"
    half_unit = float(Decimal(1).scaleb(shown.as_tuple().exponent)) / 2
    slack = half_unit + source.slack(float(value)) + 1e-12
    if abs(float(shown) - float(value)) <= slack:
        return None
    return f"{source.name} is {value!r}"


def table_errors(spec: Table) -> list[str]:
    found = [(header, rows) for section, header, rows in tables(spec.file)
             if section == spec.section]
    if len(found) != 1:
        return [f"{spec.file}: {len(found)} tables under '{spec.section}', expected one"]
    header, rows = found[0]
    columns = [plain(h) for h in header[1:]]
    labels = [plain(row[0]) for row in rows]
    if sorted(columns) != sorted(spec.columns):
        return [f"{spec.file} '{spec.section}': columns {columns}, expected "
                f"{list(spec.columns)} (update TABLES in tests/doc_figures.py with the page)"]
    if sorted(labels) != sorted(spec.rows):
        return [f"{spec.file} '{spec.section}': rows {labels}, expected {list(spec.rows)} "
                "(update TABLES in tests/doc_figures.py with the page)"]
    errors = []
    for label, row in zip(labels, rows, strict=True):
        for column, cell in zip(columns, row[1:], strict=True):
            printed = figure_in(cell)
            source = spec.source(spec.rows[label], spec.columns[column])
            where = f"{spec.file} '{spec.section}', row '{label}', column '{column}'"
            if source is None:
                if printed is not None:
                    errors.append(f"{where}: {printed} has no source")
                continue
            if printed is None:
                if plain(cell):
                    errors.append(f"{where}: '{cell}' is not a figure")
                continue
            why = disagreement(printed, source)
            if why:
                errors.append(f"{where}: printed {printed}, but {why}")
    return errors


@pytest.mark.parametrize("spec", TABLES, ids=lambda t: f"{t.file}:{t.section}")
def test_table_figures_agree_with_their_sources(spec: Table) -> None:
    errors = table_errors(spec)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("figure", PROSE, ids=lambda p: f"{p.file}:{p.pattern}")
def test_prose_figures_agree_with_their_sources(figure: Prose) -> None:
    matches = list(figure.regex.finditer(prose(figure.file)))
    assert matches, f"{figure.file}: no text matches {figure.pattern!r} (reworded?)"
    for match in matches:
        why = disagreement(match.group(1), figure.source)
        assert why is None, (f"{figure.file}, '{match.group(0)}': printed {match.group(1)}, "
                             f"but {why}")


def unchecked_numbers(file: str) -> list[str]:
    """Numbers of ``file`` outside code, links, checked figures and :data:`NOT_RESULTS`."""
    text = prose(file)
    covered = [m.span(1) for figure in PROSE if figure.file == file
               for m in figure.regex.finditer(text)]
    covered += [m.span() for pattern in [*NOT_RESULTS, r"`[^`]*`", r"\]\([^)]*\)"]
                for m in re.finditer(pattern, text)]
    loose = []
    for m in re.finditer(rf"(?<![\w@.\-/]){NUMBER}(?!\w)", text):
        if not any(start <= m.start() and m.end() <= end for start, end in covered):
            loose.append(f"'{text[max(0, m.start() - 30):m.end() + 10]}'")
    for section, _header, rows in tables(file):
        if any(t.file == file and t.section == section for t in TABLES):
            continue
        for row in rows:
            loose += [f"'{cell}' in the table under '{section}'" for cell in row[1:]
                      if figure_in(cell) is not None]
    return loose


@pytest.mark.parametrize("file", COVERED)
def test_every_number_is_a_checked_figure_or_a_setting(file: str) -> None:
    loose = unchecked_numbers(file)
    assert not loose, (f"{file}: numbers with no source (tie each to a recorded result in "
                       "PROSE or TABLES of tests/doc_figures.py, or drop it): "
                       + "; ".join(loose))


def test_readme_is_short_and_leads_with_the_headline() -> None:
    lines = read("README.md").splitlines()
    assert len(lines) <= README_LINES, f"README.md has {len(lines)} lines (at most {README_LINES})"
    first_screen = " ".join(" ".join(lines[:HEADLINE_LINES]).split())
    assert HEADLINE.regex.search(first_screen), (
        f"README.md: the headline {HEADLINE.pattern!r} is not in the first "
        f"{HEADLINE_LINES} lines")


def test_the_headline_model_is_the_best() -> None:
    from lastfm_rec.models import BEST_MODEL

    results = notebook_results("05")
    best = max(results["test"], key=lambda name: results["test"][name]["ndcg@10"])
    assert best == results["best_model"] == BEST_MODEL == "hybrid", (
        "README.md and docs/results.md call the hybrid the best model; notebook 5 ranks "
        f"{best!r} first and records best_model {results['best_model']!r}")


def test_stated_comparisons_hold() -> None:
    test = notebook_results("05")["test"]
    per_seed = notebook_results("06")["literature_per_seed"]["hybrid (0/1 + friends)"]
    social = notebook_results("06")["published_ndcg10"]["SocialLGN"]
    spark = notebook_results("07")
    assert "ranks no better than chance" in prose("README.md")
    assert test["sgd-mf"]["ndcg@10"] <= test["random"]["ndcg@10"], "sgd-mf beats chance"
    assert "is above SocialLGN on every seed" in prose("docs/results.md")
    assert "Every difference below holds" in prose("docs/results.md")
    significance = notebook_results("05")["significance"]
    for model in ("als", "ease", "plain-als", "item-knn", "rp3beta", "popularity"):
        assert significance[model]["holds"], f"hybrid against {model} does not hold"
    assert min(per_seed) > social, f"hybrid on 0/1 input per seed {per_seed}, SocialLGN {social}"
    assert "Spark is the slower and the larger" in prose("docs/spark.md")
    for run in spark["fit_seconds"]:
        if run.endswith("spark-als"):
            twin = run.replace("spark-als", "als (implicit)")
            assert spark["fit_seconds"][run] > spark["fit_seconds"][twin], run
            assert spark["peak_mb"][run] > spark["peak_mb"][twin], run


# =========================================================================== links and names


def markdown_links(file: str) -> Iterator[str]:
    for match in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", without_code_blocks(read(file))):
        yield match.group(1)


def anchors(file: Path) -> set[str]:
    """GitHub's anchors of the headings of a markdown file."""
    out = set()
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("file", DOC_FILES)
def test_relative_links_point_at_existing_files(file: str) -> None:
    broken = []
    for target in markdown_links(file):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (ROOT / file).parent / path if path else ROOT / file
        if not resolved.exists():
            broken.append(f"{target} (no {resolved.relative_to(ROOT)})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{file}: broken links: {', '.join(broken)}"


def code_spans(file: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", without_code_blocks(read(file)))


def defined_names(path: Path) -> set[str]:
    """Top-level names a module defines, assigns or imports (and the package's lazy names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                names |= set(ast.literal_eval(node.value))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def resolves(dotted_name: str) -> bool:
    """Whether ``lastfm_rec.a.b.Name`` names a module of the package or a name in one."""
    parts = dotted_name.split(".")
    for split in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:split])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            rest = parts[split:]
            return not rest or rest[0] in defined_names(module)
    return False


@pytest.mark.parametrize("file", DOC_FILES)
def test_named_modules_functions_and_files_exist(file: str) -> None:
    missing = []
    for span in code_spans(file):
        for name in re.findall(r"\blastfm_rec(?:\.\w+)+", span):
            if not resolves(name):
                missing.append(name)
        for path in re.findall(r"(?<![\w/])((?:tests|bench|lastfm_rec|notebooks|rec_sheets)"
                               r"/[\w./-]+)", span):
            if not (ROOT / path).exists():
                missing.append(path)
    assert not missing, f"{file}: no such module, name or file: {', '.join(missing)}"


def command_lines(file: str, program: str, spans: bool) -> Iterator[str]:
    """Lines of ``file``'s code blocks (and code spans, with ``spans``) that run
    ``program``, bare or from ``.venv/bin``, after any environment assignments."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", read(file), flags=re.S | re.M)
    text = "\n".join([*blocks, *(code_spans(file) if spans else [])]).replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split(" #")[0].split()
        while words and re.match(r"\w+=", words[0]):
            words.pop(0)
        if words and words[0] in (program, f".venv/bin/{program}"):
            yield " ".join(words)


@pytest.mark.parametrize("file", DOC_FILES)
def test_documented_command_lines_parse(file: str, capsys: pytest.CaptureFixture) -> None:
    """Full command lines of code blocks; spans such as `lastfm-rec scale fit` name a
    command without its required options."""
    from lastfm_rec.serving.cli import build_parser

    for line in command_lines(file, "lastfm-rec", spans=False):
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"{file}: `{line}` does not parse: {capsys.readouterr().err.strip()}")


@pytest.mark.parametrize("file", DOC_FILES)
def test_documented_make_targets_exist(file: str) -> None:
    targets = set(re.findall(r"^([\w-]+):", read("Makefile"), flags=re.M))
    named = {line.split()[1] for line in command_lines(file, "make", spans=True)
             if len(line.split()) > 1}
    assert named <= targets, f"{file}: no make target {sorted(named - targets)}"


def test_readme_gives_the_three_commands() -> None:
    named = {line.split()[1] for line in command_lines("README.md", "make", spans=False)}
    assert {"run", "test", "lab"} <= named, f"README.md's commands: {sorted(named)}"


# =========================================================================== examples


def python_examples() -> list[tuple[str, int, str]]:
    examples = []
    for file in DOC_FILES:
        blocks = re.findall(r"^```python\n(.*?)^```", read(file), flags=re.S | re.M)
        examples += [(file, i, code) for i, code in enumerate(blocks)]
    return examples


@pytest.mark.parametrize("file, index, code", python_examples(),
                         ids=[f"{f}:{i}" for f, i, _ in python_examples()])
def test_python_examples_run_on_synthetic_data(file: str, index: int, code: str,
                                               synthetic_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASTFM_REC_DATA", str(synthetic_dir))
    namespace: dict[str, Any] = {"__name__": "__example__"}
    exec(compile(code, f"{file} example {index}", "exec"), namespace)
    ids = namespace.get("ids")
    assert ids is not None and len(set(ids.tolist())) == 10, (
        f"{file} example {index} should end with ten distinct recommended ids in `ids`")
