"""The house rules of the layout (README, "Design"), checked on the source.

Every import counts, also those inside functions and under ``TYPE_CHECKING``:
an import made late to dodge a circle is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "projections", "adapters")
#: Who may import whom, folder by folder: adapters -> projections -> ledger.
LAYERS = {"ledger": set(), "projections": {"ledger"}, "adapters": {"projections", "ledger"}}
#: The only production modules that may reach the sandbox (the demo, ``sync --sandbox``,
#: ``run --sandbox``).
SANDBOX_USERS = {"adapters.cli.demo", "adapters.cli.sandbox_state"}  # every --sandbox
#: Libraries that reach a disk, a server or the network. In ``ledger/`` only the event
#: store opens the database (STYLE.md: "store.py (opening the event store)").
IO_MODULES = ("socket", "requests", "urllib.request", "http", "subprocess", "sqlite3",
              "psycopg", "sqlalchemy", "eventsourcing.sqlite", "eventsourcing.postgres",
              "msal", "simple_salesforce", "os", "pathlib", "shutil", "io", "time")
LEDGER_IO_ALLOWED = {"ledger.store"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target in MODULES:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, if there is any (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _is_package_init(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def test_no_import_circle_between_modules() -> None:
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_no_import_circle_between_folders() -> None:
    folders: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        here = name if _is_package_init(name) else name.rpartition(".")[0]
        for target in targets:
            there = target if _is_package_init(target) else target.rpartition(".")[0]
            # a folder importing its own sub-folder is how packages compose, not a circle
            if there != here and not there.startswith(here + ".") \
                    and not here.startswith(there + "."):
                folders.setdefault(here, set()).add(there)
    assert _cycle(folders) is None, " -> ".join(_cycle(folders) or [])


@pytest.mark.parametrize("layer", PACKAGES)
def test_imports_flow_one_way(layer: str) -> None:
    wrong = sorted(f"{name} imports {target}" for name, targets in GRAPH.items()
                   if name.split(".")[0] == layer for target in targets
                   if target.split(".")[0] not in LAYERS[layer] | {layer})
    assert not wrong, wrong


def test_ledger_does_no_io() -> None:
    """Deciding never touches a disk, a clock or the network; only the store opens the DB."""
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("ledger") or name in LEDGER_IO_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{name}: {n}" for n in names
                          if any(n == io or n.startswith(io + ".") for io in IO_MODULES)]
    assert not offenders, offenders


def test_sandbox_is_reached_only_by_the_demo_and_the_sandbox_state() -> None:
    users = {name for name, targets in GRAPH.items() if not name.startswith("adapters.sandbox")
             and any(t.startswith("adapters.sandbox") for t in targets)}
    assert users <= SANDBOX_USERS, users - SANDBOX_USERS


def test_wire_field_names_stay_in_their_rooms() -> None:
    """Nothing outside a system's folder (and the sandbox) knows its field names."""
    graph_names = ("iCalUId", "seriesMasterId", "originalStartTimeZone", "changeKey")
    sf_names = ("RecurrenceActivityId", "SystemModstamp", "IsRecurrence2", "EventRelation")
    allowed = ("adapters.graph", "adapters.salesforce", "adapters.sandbox")
    leaks = []
    for name, path in MODULES.items():
        if name.startswith(allowed):
            continue
        text = path.read_text()
        leaks += [f"{name}: {n}" for n in graph_names + sf_names if f'"{n}"' in text]
    assert not leaks, leaks
