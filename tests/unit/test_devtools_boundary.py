"""The service never depends on the tools that run it: devtools, scripts, bench and tests stay
out of the image (the Dockerfile copies api/, core/, tasks/, workers/ and celeryconfig.py)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = [
    *(ROOT / "api").rglob("*.py"),
    *(ROOT / "core").rglob("*.py"),
    *(ROOT / "tasks").rglob("*.py"),
    *(ROOT / "workers").rglob("*.py"),
    ROOT / "celeryconfig.py",
]
TOOLS = {"devtools", "scripts", "bench", "tests"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_service_code_imports_no_tool():
    assert len(SERVICE) > 20
    offenders = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & TOOLS) for p in SERVICE}
    assert {path: tools for path, tools in offenders.items() if tools} == {}


def test_the_tools_share_one_process_runner():
    for user in ("scripts/devstack.py", "tests/support/stack.py", "bench/stack.py"):
        assert "devtools" in imported_packages(ROOT / user), user
