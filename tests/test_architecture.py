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

# The domains of the inspections app, lowest first. A domain's core (its models, services,
# selectors and the other modules beside them) imports only its own domain, the domains below it
# and the shared kernel (inspections/*.py: errors, locks, queueing, task_names, ...). Its edge
# (api/, pages/, urls.py: what answers HTTP) may compose any domain's services and selectors.
DOMAINS = ("access", "catalog", "registry", "review", "line", "ops")
EDGE_PARTS = {"api", "pages", "urls.py"}
KERNEL = {"errors", "locks", "queueing", "task_names", "models"}


def _domain_imports() -> list[tuple[str, str, str, bool]]:
    """(file, its domain, imported domain, whether the file is edge) for every cross-domain import."""
    found = []
    for path in (ROOT / "inspections").rglob("*.py"):
        parts = path.relative_to(ROOT / "inspections").parts
        if parts[0] not in DOMAINS:
            continue
        edge = len(parts) > 1 and parts[1] in EDGE_PARTS
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                names = module.split(".")
                if names[0] == "inspections" and len(names) > 1 and names[1] in DOMAINS and names[1] != parts[0]:
                    found.append((str(path.relative_to(ROOT)), parts[0], names[1], edge))
                    break
    return found


def test_each_domains_core_imports_only_the_domains_below_it():
    rank = {name: index for index, name in enumerate(DOMAINS)}
    upward = sorted(f"{path} imports inspections.{imported}" for path, domain, imported, edge in _domain_imports()
                    if not edge and rank[imported] > rank[domain])
    assert upward == []


def test_the_contract_sees_the_imports_it_allows():
    # The check above reads real imports: the review domain builds on the catalog and the registry.
    seen = {(domain, imported) for _, domain, imported, edge in _domain_imports() if not edge}
    assert {("review", "catalog"), ("review", "registry"), ("registry", "catalog")} <= seen


def test_domain_code_imports_models_from_their_domain_not_the_aggregate():
    # inspections.models re-exports every domain's models for Django; inside a domain the import
    # names the domain, so the contract above sees it.
    offenders = []
    for domain in DOMAINS:
        for path in (ROOT / "inspections" / domain).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and node.module == "inspections.models":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_kernel_imports_no_domain():
    offenders = []
    for path in (ROOT / "inspections").glob("*.py"):
        if path.stem not in KERNEL:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[:2][-1] in DOMAINS:
                if path.stem != "models":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_services_are_packages_per_domain_not_one_flat_folder():
    assert not (ROOT / "inspections" / "services").exists()
    assert not (ROOT / "inspections" / "selectors.py").exists()
    for domain in DOMAINS:
        assert (ROOT / "inspections" / domain / "__init__.py").is_file(), domain


def test_every_page_view_lives_in_a_domains_pages():
    from django.urls import URLPattern, URLResolver, get_resolver

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace not in ("admin", "api"):
                    yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.name, pattern.callback

    def in_pages(module: str) -> bool:
        names = module.split(".")
        return len(names) > 3 and names[0] == "inspections" and names[1] in DOMAINS and names[2] == "pages"

    misplaced = {name: view.__module__ for name, view in views(get_resolver().url_patterns)
                 if not in_pages(view.__module__) and view.__module__ not in PAGE_VIEW_MODULES_ELSEWHERE}
    assert misplaced == {}
    assert not (ROOT / "inspections" / "views.py").exists()


def test_pages_read_through_selectors_not_the_orm():
    offenders = []
    for path in [*(ROOT / "inspections").glob("*/pages/*.py"), *(ROOT / "inspections" / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "objects":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_services_speak_no_http():
    # Services raise the kinds of inspections.errors; the edge (inspections.api.exceptions) turns a
    # kind into an HTTP status. No domain core module names a status code or an HTTP library.
    offenders = []
    for path in (ROOT / "inspections").rglob("*.py"):
        parts = path.relative_to(ROOT / "inspections").parts
        if parts[0] not in DOMAINS or (len(parts) > 1 and parts[1] in EDGE_PARTS):
            continue
        text = path.read_text()
        for word in ("status_code", "rest_framework", "django.http", "HttpResponse"):
            if word in text:
                offenders.append(f"{path.relative_to(ROOT)}: {word}")
    assert offenders == []


def test_each_kind_of_refusal_has_one_http_status_at_the_edge():
    from inspections import errors
    from inspections.api.exceptions import ERROR_STATUS, http_status

    kinds = {value for value in vars(errors).values()
             if isinstance(value, type) and issubclass(value, errors.ApplicationError) and value is not errors.ApplicationError}
    assert kinds == {kind for kind, _ in ERROR_STATUS}
    assert http_status(errors.ApplicationError("bad")) == 400
    assert {http_status(kind("x")) for kind in kinds} == {403, 404, 409, 412, 413, 503}
