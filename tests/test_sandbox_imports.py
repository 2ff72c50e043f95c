"""The sandbox is a package of its own with one-way imports: the state is built from the four vendor stores,
which know nothing of it (nor of the app), and the vendor clients never import the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORES = ("segmetrics", "salesmachine", "personaclick", "infinity")


def imported(path: Path) -> set[str]:
    """Every module a file imports, TYPE_CHECKING blocks included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("store", STORES)
def test_vendor_stores_do_not_import_the_state_or_the_app(store: str) -> None:
    found = imported(ROOT / "sandbox" / f"{store}.py")
    assert not {n for n in found if n.startswith(("sandbox.state", "sandbox.app"))}


def test_the_state_imports_the_stores() -> None:
    found = imported(ROOT / "sandbox" / "state.py")
    assert {f"sandbox.{store}" for store in STORES} <= found


def test_the_vendor_clients_never_import_the_sandbox() -> None:
    for path in (ROOT / "handlers").glob("*.py"):
        assert not {n for n in imported(path) if n == "sandbox" or n.startswith("sandbox.")}, path.name
    assert not list((ROOT / "handlers").glob("sandbox/*.py"))  # moved to the top level
