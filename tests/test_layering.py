"""The architecture as rules: which part may import which, and where each heavy dependency lives.

Layers, lowest first: config; tasks.records (the data every layer shares); tasks.files (reading
and writing files); the pure stages (tasks.qa, tasks.steps, tasks.reports, tasks.preservation,
tasks.demo) and models (they are handed to the stages, never imported by them); catalog
(persistence); flows (orchestration, the only part that sees everything). No import runs upward,
so there is no cycle between the parts. torch only in models/, Ray and Prefect only in flows/,
SQL only in catalog/.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARTS = ("config", "tasks", "models", "catalog", "flows")

_BELOW_STAGES = {"config", "tasks.records", "tasks.files"}
MAY_IMPORT: dict[str, set[str]] = {
    "config": set(),
    "tasks.records": {"config"},
    "tasks.files": {"config", "tasks.records"},
    "tasks.qa": _BELOW_STAGES,
    "tasks.reports": _BELOW_STAGES,
    "tasks.preservation": _BELOW_STAGES,
    "tasks.demo": _BELOW_STAGES,
    "tasks.steps": _BELOW_STAGES | {"tasks.qa", "tasks.reports"},
    "models": _BELOW_STAGES | {"tasks.demo"},  # fine-tuning degrades photographs as the demo does
    "catalog": {"config", "tasks.records"},
    "flows": {"config", "tasks.records", "tasks.files", "tasks.qa", "tasks.reports", "tasks.preservation",
              "tasks.demo", "tasks.steps", "models", "catalog"},
}
ONLY_IN = {"torch": "models", "torchvision": "models", "basicsr": "models", "realesrgan": "models",
           "ray": "flows", "prefect": "flows", "sqlalchemy": "catalog", "alembic": "catalog"}


def _part(module: str) -> str:
    names = module.split(".")
    return f"tasks.{names[1]}" if names[0] == "tasks" and len(names) > 1 else names[0]


def _imports() -> list[tuple[str, str, str]]:
    """(file, importing part, imported module) for every absolute import in the five parts."""
    found = []
    for part in PARTS:
        for path in sorted((REPO / part).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                found += [(str(path.relative_to(REPO)), _part(module), name) for name in names]
    return found


def test_tasks_is_split_into_parts_by_concern() -> None:
    loose = sorted(p.name for p in (REPO / "tasks").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules directly in tasks/ (put them in the part they belong to): {loose}"
    assert {f"tasks.{p.name}" for p in (REPO / "tasks").iterdir() if (p / "__init__.py").is_file()} \
        == {k for k in MAY_IMPORT if k.startswith("tasks.")}


def test_no_import_runs_against_the_layers() -> None:
    against = sorted(
        f"{file}: {importer} imports {name}" for file, importer, name in _imports()
        if name.split(".")[0] in PARTS and _part(name) != importer and _part(name) not in MAY_IMPORT[importer]
    )
    assert against == []


def test_heavy_dependencies_stay_in_their_part() -> None:
    misplaced = sorted(
        f"{file}: {name} outside {ONLY_IN[name.split('.')[0]]}/" for file, importer, name in _imports()
        if name.split(".")[0] in ONLY_IN and importer.split(".")[0] != ONLY_IN[name.split(".")[0]]
    )
    assert misplaced == []


def test_the_layers_have_no_cycle() -> None:
    order: list[str] = []
    remaining = dict(MAY_IMPORT)
    while remaining:
        ready = [p for p, deps in remaining.items() if deps <= set(order)]
        assert ready, f"a cycle among {sorted(remaining)}"
        order += ready
        for p in ready:
            del remaining[p]
