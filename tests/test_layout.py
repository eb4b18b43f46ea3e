"""The program (``__main__.py`` and ``components/``) never imports the offline engine: a real `pulumi up`
runs without it (issue #11, item 6)."""

from __future__ import annotations

import ast
from pathlib import Path

from offline_engine.stack_files import PROJECT_DIR

PROGRAM_FILES = [PROJECT_DIR / "__main__.py", *sorted((PROJECT_DIR / "components").rglob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            modules.update(str(arg.value) for arg in node.args if isinstance(arg, ast.Constant))
    return modules


def test_the_program_never_imports_the_offline_engine() -> None:
    assert len(PROGRAM_FILES) > 10
    offenders = {
        path.relative_to(PROJECT_DIR).as_posix(): sorted(
            module for module in imported_modules(path) if module.split(".")[0] == "offline_engine"
        )
        for path in PROGRAM_FILES
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import offline_engine.plan\nfrom offline_engine import stack_files\n"
        "import importlib\nimportlib.import_module('offline_engine.mock_cloud')\n"
    )
    assert {"offline_engine.plan", "offline_engine", "offline_engine.mock_cloud"} <= imported_modules(sample)
