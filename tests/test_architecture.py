"""The shape of the code, checked: module sizes, import cycles, private names, the source registry.

import-linter (run by .ci/run, contracts in pyproject.toml) guards which package may import which;
these tests guard what it does not: no module over 600 lines, no cycle between any two modules
(imports inside functions included), no private name taken from another module, and every
evidence source registered once with typed tools and guidance.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "tools", "index", "prompts")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in the file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, [alias.name for alias in node.names], node.lineno))
    return out


def _edges() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name that is a submodule counts as that module)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, names, _ in _imports(name, path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            if module in MODULES and (len(targets) < len(names) or not names):
                targets.append(module)
            graph[name].update(t for t in targets if t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_is_over_600_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycles_between_modules():
    """Package __init__ files re-exporting their own submodules are not cycles of behaviour: a
    package importing its child, and the child importing a sibling through the package path, is
    how Python packages work; every other cycle is one."""
    graph = _edges()
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}  # a package's own children
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("where", ["bot", "tools", "index", "prompts", "tests", "benchmarks"])
def test_no_private_name_is_imported_from_another_module(where):
    offenders = []
    for path in sorted((ROOT / where).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for module, names, line in _imports(name, path):
            if module.split(".")[0] not in PACKAGES:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{path.relative_to(ROOT)}:{line} takes {', '.join(private)} from {module}")
    assert not offenders, "\n".join(offenders)


def test_no_private_attribute_of_another_module_is_used():
    """``module._name`` where ``module`` is a project module imported under a name."""
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                            if alias.name.split(".")[0] in PACKAGES}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                aliases |= {alias.asname or alias.name for alias in node.names
                            if f"{node.module}.{alias.name}" in MODULES}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in aliases:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)


def test_the_core_imports_nothing_from_the_bot():
    offenders = [f"{name} imports {module}" for name, path in MODULES.items() if name.split(".")[0] == "tools"
                 for module, _, _ in _imports(name, path)
                 if module.split(".")[0] in ("bot", "slack_bolt", "slack_sdk", "langgraph", "openai")]
    assert not offenders


def test_every_source_is_registered_once_with_typed_tools_and_guidance():
    from bot.agent_tools import TOOL_NAMES, tool_specs
    from tools.source_api import Source, ToolArguments
    from tools.sources import SOURCES

    names = [source.name for source in SOURCES]
    assert names == ["metrics", "logs", "changes", "incidents"]
    packages = {path.parent.name for path in (ROOT / "tools").glob("*/source.py")}
    assert len(packages) == len(SOURCES), "a source package is not in the registry (tools/sources.py)"
    specs = {spec["function"]["name"]: spec["function"] for spec in tool_specs()}
    for source in SOURCES:
        assert isinstance(source, Source)
        for tool in source.tools:
            assert issubclass(tool.arguments, ToolArguments)
            assert tool.name in TOOL_NAMES and specs[tool.name]["description"] == tool.guidance
            assert len(tool.guidance) > 40, f"{tool.name} has no guidance in its package's guidance.md"
    assert set(TOOL_NAMES) == {t.name for s in SOURCES for t in s.tools} | {"check_service", "get_evidence"}
