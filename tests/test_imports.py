"""The import graph, checked on the source: the project's modules import each other at the top of the module
(so the graph a reader sees is the graph that runs), no import cycle between modules (imports inside functions
and the CLI's command table count too), no function over 100 lines, and the command line starts without
loading torch, transformers or Prefect."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mblip", "pipeline", "flows", "model", "data_cards", "dev")
# (importer, imported): imports of the project's own modules allowed inside a function, and why (none).
LAZY_OWN_IMPORTS: dict[tuple[str, str], str] = {}
HEAVY = ("torch", "transformers", "prefect", "peft", "accelerate")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def own_imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool, int]]:
    """(imported module, at the module's top, line) for each import of a project module in ``path``; an
    ``if TYPE_CHECKING:`` block at the top counts as the top."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top |= set(node.body)
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and (target := resolve(name, modules)):
                found.append((target, node in top, node.lineno))
    return found


def command_table_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """The CLI resolves each subcommand's handler module by name after parsing: those count as imports."""
    from mblip.cli import HANDLER_MODULES

    return {"mblip.cli": {resolve(name, modules) for name in HANDLER_MODULES.values()}}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {name: {t for t, _, _ in own_imports(path, modules)} - {name} for name, path in modules.items()}
    for name, targets in command_table_edges(modules).items():
        graph[name] |= targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}  # state: "open" while on the current path, "done" once fully explored

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [name, target] if target in trail else [name, target])
            elif target not in state:
                visit(target, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return cycles


def test_no_import_cycle_between_modules():
    assert find_cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "a.py").write_text("import pipeline.b\n")
    (tmp_path / "pipeline" / "b.py").write_text("def f():\n    from pipeline.a import x\n")
    modules = {"pipeline.a": tmp_path / "pipeline" / "a.py", "pipeline.b": tmp_path / "pipeline" / "b.py"}
    assert own_imports(modules["pipeline.b"], modules) == [("pipeline.a", False, 2)]
    graph = {name: {t for t, _, _ in own_imports(path, modules)} for name, path in modules.items()}
    assert find_cycles(graph) == [["pipeline.a", "pipeline.b", "pipeline.a"]]


def test_own_modules_are_imported_at_the_top():
    modules = project_modules()
    lazy = [f"{path.relative_to(REPO)}:{line} imports {target}"
            for name, path in modules.items() for target, at_top, line in own_imports(path, modules)
            if not at_top and (name, target) not in LAZY_OWN_IMPORTS]
    assert lazy == []


def test_no_function_over_100_lines():
    long = []
    for path in [*project_modules().values(), *sorted((REPO / "tests").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 100:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert long == []


def test_the_command_line_starts_without_heavy_libraries():
    probe = ("import sys\nfrom mblip.cli import build_parser\n"
             "build_parser().parse_args(['train', 'x.yaml'])\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
