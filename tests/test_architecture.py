"""The dependency direction is worker -> inspections -> mlcore, and mlcore never imports Django."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_top_level_names(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_mlcore_source_imports_no_django_and_nothing_of_the_platform():
    forbidden = {"django", "rest_framework", "celery", "inspections", "worker", "steelqc"}
    offenders = {path: names & forbidden for path, names in _imported_top_level_names("mlcore").items() if names & forbidden}
    assert offenders == {}


def test_importing_every_mlcore_module_loads_no_django():
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "mlcore").rglob("*.py")
        if path.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(len(bad)); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert len(modules) >= 2


def test_inspections_does_not_import_the_worker():
    offenders = {path for path, names in _imported_top_level_names("inspections").items() if "worker" in names}
    assert offenders == set()


def test_importing_mlcore_root_does_not_load_tensorflow():
    code = "import sys, mlcore, mlcore.splits; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


PAGE_VIEW_MODULES_ELSEWHERE = {"django.contrib.auth.views", "django.views.static", "steelqc.views"}


def test_every_page_view_lives_in_inspections_pages():
    from django.urls import URLPattern, URLResolver, get_resolver

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace not in ("admin", "api"):
                    yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.name, pattern.callback

    misplaced = {name: view.__module__ for name, view in views(get_resolver().url_patterns)
                 if not view.__module__.startswith("inspections.pages.")
                 and view.__module__ not in PAGE_VIEW_MODULES_ELSEWHERE}
    assert misplaced == {}
    assert not (ROOT / "inspections" / "views.py").exists()


def test_pages_read_through_selectors_not_the_orm():
    offenders = []
    for path in (ROOT / "inspections" / "pages").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "objects":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
