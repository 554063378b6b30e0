"""The README and the guide in docs/ name only real things, and are the guide they claim to be.

Every `make` target, environment variable, management command and `python -m mlcore` subcommand
they name exists; the README is a short start page whose first section gives exactly the two
set-up commands; each guide has a table of contents whose links land on headings, and every
link between the documents lands on a heading; every variable the settings read is in
docs/operations.md's configuration table."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GUIDES = ("user-guide.md", "api.md", "operations.md", "ml.md", "benchmarks.md")
DOCUMENTS = [README, *sorted(DOCS.glob("*.md"))]
# The environment variables the docs may name: these prefixes, and the first column of the
# configuration tables in docs/operations.md (SECRET_KEY, DEBUG, TIME_ZONE, ...).
VARIABLE = re.compile(r"\b(?:(?:STEELQC|GUNICORN|DJANGO|CELERY|DATABASE|AWS|SECURE|POSTGRES|KERAS)_[A-Z0-9_]*[A-Z0-9]"
                      r"|PG(?:HOST|PORT|USER|PASSWORD))\b")
# Where variables are read: Python reads them by quoted name, shell, Make and compose as ${NAME}.
CODE_DIRS = ("steelqc", "inspections", "mlcore", "worker", "benchmarks", "scripts", "tests/e2e")
SHELL_FILES = ("Makefile", "docker-compose.yml", "Dockerfile", *(str(p.relative_to(ROOT)) for p in (ROOT / "scripts").glob("*.sh")))


def _code(text: str) -> str:
    """Everything a reader may copy: fenced blocks and inline code spans."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return "\n".join([*fenced, *re.findall(r"`([^`\n]+)`", prose)])


def _all_code() -> dict[Path, str]:
    return {path: _code(path.read_text()) for path in DOCUMENTS}


def _python_sources() -> str:
    files = [ROOT / "manage.py", ROOT / "gunicorn.conf.py", ROOT / "tests" / "conftest.py"]
    for folder in CODE_DIRS:
        files += (ROOT / folder).rglob("*.py")
    return "\n".join(path.read_text() for path in files)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc")
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", prose, re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _configuration_table_names() -> set[str]:
    table = _section((DOCS / "operations.md").read_text(), "Configuration")
    first_cells = re.findall(r"^\| ([^|]+) \|", table, re.M)
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def test_the_guide_files_exist():
    for name in GUIDES:
        assert (DOCS / name).is_file(), name


def test_readme_is_a_short_start_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"


def test_readmes_first_section_gives_exactly_the_two_commands():
    text = README.read_text()
    first = re.split(r"^## ", text, flags=re.M)[1]
    commands = [line.split("#", 1)[0].strip() for block in re.findall(r"^```[^\n]*\n(.*?)^```", first, re.S | re.M)
                for line in block.splitlines()]
    assert [command for command in commands if command] == ["make run", "make test"]


def test_readme_points_to_each_guide():
    text = README.read_text()
    for name in (*GUIDES, "architecture.md"):
        assert f"(docs/{name})" in text, name


def test_every_make_target_named_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = {(path.name, target) for path, code in _all_code().items()
             for target in re.findall(r"(?<![\w-])make ([a-z][\w-]*)(?![\w*-])", code)}
    assert {target for _, target in named} >= {"run", "test"}
    assert sorted((doc, target) for doc, target in named if target not in targets) == []


def test_every_environment_variable_named_is_read_somewhere():
    python = _python_sources()
    shell = "\n".join((ROOT / name).read_text() for name in SHELL_FILES)
    named = {(path.name, name) for path, code in _all_code().items() for name in VARIABLE.findall(code)}
    named |= {("operations.md", name) for name in _configuration_table_names()}
    assert len(named) > 100

    def read(name: str) -> bool:
        return (re.search(rf"[\"']{name}[\"']", python) is not None
                or re.search(rf"\$\{{?{name}\b", shell) is not None)

    assert sorted((doc, name) for doc, name in named if not read(name)) == []


def test_every_management_command_named_exists():
    in_repo = {path.stem for path in ROOT.glob("**/management/commands/*.py")
               if ".venv" not in path.parts and path.stem != "__init__"}
    installed = set(get_commands())
    named = {(path.name, command) for path, code in _all_code().items()
             for command in re.findall(r"manage\.py ([a-z][a-z0-9_]*)", code)}
    assert {command for _, command in named} >= {"import_dataset", "create_api_token", "backup_installation"}
    assert sorted((doc, command) for doc, command in named if command not in in_repo | installed) == []


def test_every_mlcore_subcommand_named_exists():
    # mlcore/cli.py's parser, and the commands packages add to it (mlcore/anomaly/cli.py).
    cli = "".join(path.read_text() for path in sorted((ROOT / "mlcore").rglob("cli.py")))
    subcommands = set(re.findall(r"add_parser\(\s*\"([a-z][\w-]*)\"", cli))
    named = {(path.name, command) for path, code in _all_code().items()
             for command in re.findall(r"-m mlcore ([a-z][\w-]*)", code)}
    assert {command for _, command in named} >= {"train", "evaluate", "predict"}
    assert sorted((doc, command) for doc, command in named if command not in subcommands) == []


@pytest.mark.parametrize("name", GUIDES)
def test_each_guide_has_a_table_of_contents_whose_links_land_on_headings(name):
    text = (DOCS / name).read_text()
    contents = _section(text, "Contents")
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert len(links) >= 5, f"{name} has no table of contents"
    assert sorted(set(links) - _anchors(text)) == []
    headings = {_slug(h) for h in re.findall(r"^## (.+)$", text, re.M)} - {"contents"}
    assert headings <= set(links), f"{name}: sections missing from the table of contents"


def test_every_link_between_the_documents_lands_on_a_heading():
    broken = []
    for path in DOCUMENTS:
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?(?:#([^)]+))?\)", path.read_text()):
            if not target and not anchor:
                continue
            linked = (path.parent / target).resolve() if target else path
            if not linked.exists():
                if linked.name != "architecture.md":  # the lead engineer's, written separately
                    broken.append((path.name, target))
                continue
            if anchor and anchor not in _anchors(linked.read_text()):
                broken.append((path.name, f"{target}#{anchor}"))
    assert broken == []


def test_every_variable_the_settings_read_is_in_the_configuration_table():
    source = "\n".join(p.read_text() for p in (ROOT / "steelqc" / "settings").glob("*.py"))
    read = set(re.findall(r"(?:env_\w+|_\w*rate|environ\.(?:get|setdefault))\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    gunicorn = set(re.findall(r"environ\.get\(\"([A-Z][A-Z0-9_]+)\"", (ROOT / "gunicorn.conf.py").read_text()))
    assert len(read) > 80 and {"STEELQC_CONTENT_SECURITY_POLICY", "STEELQC_API_THROTTLE_READ"} <= read
    assert len(gunicorn) >= 5
    assert sorted((read | gunicorn) - _configuration_table_names()) == []
