"""The package's import layering, checked from the source with ``ast``.

Layers, lowest first; a module may import package modules of its own layer or below, never
above (every import counts: top-level, inside functions and under ``TYPE_CHECKING``)::

    primitives   ops, reports, tfcompat (import nothing from the package)
    data         data, synthetic
    preprocessing
    matrices     matrices, spark (the plays and side data, in memory or on Spark)
    models       models.*, cfmodel, cfsolvers, foldin
    evaluation   evaluation, tuning, recommend, explain, literature, spark_study
    service      service, cache, cli, spark_cli, the package __init__

The service does not import evaluation or tuning. Within the models, a model module imports
``models.base`` and no sibling model, except the hybrid, a blend of the models it names. A
module that is in no layer fails the test: place it when you add it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lastfm_rec"
LAYERS: list[set[str]] = [
    {"ops", "reports", "tfcompat"},
    {"data", "synthetic"},
    {"preprocessing"},
    {"matrices", "spark"},
    {"models", "cfmodel", "cfsolvers", "foldin"},
    {"evaluation", "tuning", "recommend", "explain", "literature", "spark_study"},
    {"service", "cache", "cli", "spark_cli", "__init__", "__main__"},
]
#: Model modules that combine other models, and the ones they may import.
BLENDS = {"hybrid": {"als", "ease", "rp3beta"}}


def module_name(path: Path) -> str:
    """``lastfm_rec/models/als.py`` -> ``models.als``; ``lastfm_rec/__init__.py`` ->
    ``__init__``; ``lastfm_rec/models/__init__.py`` -> ``models``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
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
            if target.with_suffix(".py").is_file() or (target / "__init__.py").is_file():
                found.add(relative)
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
    """The service builds its matrices and side data from ``matrices``, as evaluation and
    tuning do, not through them."""
    for name in ("service", "cache"):
        path = PACKAGE / f"{name}.py"
        if path.is_file():
            assert not package_imports(path) & {"evaluation", "tuning"}, name


def test_primitives_import_nothing_from_the_package():
    for name in LAYERS[0]:
        assert package_imports(PACKAGE / f"{name}.py") == set(), name


def test_checker_sees_imports():
    """The parser finds the imports it must judge (a guard against a vacuous pass)."""
    assert "foldin" in package_imports(PACKAGE / "models" / "sgd_mf.py")
    assert "matrices" in package_imports(PACKAGE / "service.py")
    assert "reports" in package_imports(PACKAGE / "cfmodel.py")  # imported inside plot()
