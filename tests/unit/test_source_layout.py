"""The source tree keeps its shape: every module in a layer of the import contract, and every
module small enough to read in one sitting."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "batchd"
MAX_LINES = 400


def _layered_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [layers] = [each["layers"] for each in contracts if each["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split("|")}


def _top_level_modules() -> set[str]:
    found = set()
    for entry in PACKAGE.iterdir():
        if entry.suffix == ".py" and entry.stem != "__init__":
            found.add(f"batchd.{entry.stem}")
        elif (entry / "__init__.py").exists():
            found.add(f"batchd.{entry.name}")
    return found


def test_every_top_level_module_sits_in_a_layer_of_the_import_contract() -> None:
    missing = _top_level_modules() - _layered_modules()
    assert not missing, f"place these in [tool.importlinter] layers: {sorted(missing)}"


def test_every_layer_names_a_module_that_exists() -> None:
    assert _layered_modules() <= _top_level_modules()


def test_no_module_exceeds_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    too_long = {path: lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"
