"""The package's import layering, checked from the source with ``ast``.

Layers, lowest first; a module may import package modules of its own layer or below, never
above (every import counts: top-level, inside functions and under ``TYPE_CHECKING``). A module
belongs to the layer of the longest name below that matches it (``spark.study`` before
``spark``)::

    primitives   ops, files, the subpackages' own __init__ (docstrings only)
    reports      reports (writes through files)
    raw data     data.hetrec, data.synthetic, data.formats
    tables       data.preprocessing, data.sheets
    matrices     data.matrices, data.releases; spark.session, spark.io, spark.preprocessing,
                 spark.als
    original     original.* (the original's TensorFlow model, fold-in, section 3)
    models       models.*
    evaluation   evaluation.*, spark.study
    serving      serving.*, spark.cli, the package __init__

Serving, the command line aside, does not import evaluation. Within the models, a model module
imports ``models.base`` and no sibling model, except the hybrid, a blend of the models it names.
A module that is in no layer fails the test: place it when you add it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lastfm_rec"
SUBPACKAGES = {"data", "original", "models", "evaluation", "serving", "spark"}
LAYERS: list[set[str]] = [
    {"ops", "files"} | {f"{name}.__init__" for name in SUBPACKAGES - {"models"}},
    {"reports"},
    {"data.hetrec", "data.synthetic", "data.formats"},
    {"data.preprocessing", "data.sheets"},
    {"data.matrices", "data.releases", "spark.session", "spark.io", "spark.preprocessing",
     "spark.als"},
    {"original"},
    {"models"},
    {"evaluation", "spark.study"},
    {"serving", "spark.cli", "__init__", "__main__"},
]
#: Model modules that combine other models, and the ones they may import.
BLENDS = {"hybrid": {"als", "ease", "rp3beta"}}


def module_name(path: Path) -> str:
    """``lastfm_rec/models/als.py`` -> ``models.als``; ``lastfm_rec/__init__.py`` ->
    ``__init__``; ``lastfm_rec/data/__init__.py`` -> ``data.__init__``; the model registry
    ``lastfm_rec/models/__init__.py`` -> ``models``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts == ["models", "__init__"]:
        return "models"
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of the longest entry of ``LAYERS`` that is ``module`` or a package of it."""
    best = (-1, -1)
    for index, members in enumerate(LAYERS):
        for member in members:
            if module == member or module.startswith(member + "."):
                best = max(best, (len(member), index))
    if best[1] >= 0:
        return best[1]
    raise AssertionError(f"lastfm_rec/{module.replace('.', '/')} is in no layer: add it to "
                         "LAYERS in tests/test_layering.py")


def package_imports(path: Path) -> set[str]:
    """Package modules ``path`` imports (names relative to ``lastfm_rec``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "lastfm_rec" or not name.startswith("lastfm_rec."):
                continue
            relative = name.removeprefix("lastfm_rec.")
            target = PACKAGE.joinpath(*relative.split("."))
            if target.with_suffix(".py").is_file():
                found.add(relative)
            elif (target / "__init__.py").is_file():
                found.add(relative if relative == "models" else f"{relative}.__init__")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in SOURCES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_go_down_only(path):
    module = module_name(path)
    own = layer_of(module)
    upward = sorted(name for name in package_imports(path) if layer_of(name) > own)
    assert not upward, f"{module} (layer {own}) imports from above: {upward}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")),
                         ids=lambda p: p.stem)
def test_models_do_not_import_sibling_models(path):
    allowed = {"models.base"} | {f"models.{name}" for name in BLENDS.get(path.stem, ())}
    if path.stem == "__init__":
        return  # the registry imports every model
    siblings = {name for name in package_imports(path)
                if name.startswith("models.") and name not in allowed}
    assert not siblings, f"models/{path.name} imports sibling models {sorted(siblings)}"


def test_serving_does_not_borrow_from_evaluation():
    """Serving builds its matrices and side data from ``data.matrices``, as evaluation does,
    not through evaluation; only the command line (its ``evaluate`` command) reaches it."""
    for path in (PACKAGE / "serving").glob("*.py"):
        if path.name == "cli.py":
            continue
        borrowed = {name for name in package_imports(path) if name.startswith("evaluation")}
        assert not borrowed, f"serving/{path.name} imports {sorted(borrowed)}"


def test_primitives_import_nothing_from_the_package():
    for name in LAYERS[0]:
        assert package_imports(PACKAGE.joinpath(*name.split(".")).with_suffix(".py")) == set(), name


def test_top_level_stays_small():
    """The package is its subpackages plus a few shared modules (at most four)."""
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert len(modules) <= 4, sorted(modules)
    assert {path.parent.name for path in PACKAGE.glob("*/__init__.py")} == SUBPACKAGES


def test_checker_sees_imports():
    """The parser finds the imports it must judge (a guard against a vacuous pass)."""
    assert "original.foldin" in package_imports(PACKAGE / "models" / "sgd_mf.py")
    assert "data.matrices" in package_imports(PACKAGE / "serving" / "session.py")
    # imported inside CFModel.plot()
    assert "reports" in package_imports(PACKAGE / "original" / "cfmodel.py")
    assert layer_of("spark.study") > layer_of("models") > layer_of("spark.als")
