"""The package's public surface and its purity."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from batchd import scheduling

PACKAGE = Path(scheduling.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
# What a pure planner may import from the standard library: no clock, I/O, threads or randomness.
ALLOWED_STDLIB = {
    "__future__",
    "collections",
    "dataclasses",
    "enum",
    "heapq",
    "itertools",
    "math",
    "typing",
}


def test_every_exported_name_exists_and_the_list_is_sorted_without_repeats() -> None:
    exported = scheduling.__all__
    assert all(hasattr(scheduling, name) for name in exported)
    assert len(set(exported)) == len(exported)
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n))


def test_the_package_docstring_documents_every_entry_point() -> None:
    doc = scheduling.__doc__ or ""
    for name in ("plan", "JobIndex", "UsageLedger", "front_of_queue", "utilization", "Dispatch"):
        assert name in doc


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_scheduling_modules_import_only_pure_stdlib_and_themselves(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.startswith("batchd.scheduling") or name.split(".")[0] in ALLOWED_STDLIB


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_scheduling_modules_stay_small(module: Path) -> None:
    assert len(module.read_text().splitlines()) < 400
