"""The docs stand on their own: every link in README.md and docs/*.md points into the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_links_point_to_files_in_the_repository(page):
    for target in LINK.findall(page.read_text()):
        path = target.split("#", 1)[0]
        assert "://" not in target and not target.startswith(("mailto:", "/")), f"{page.name}: external link {target}"
        resolved = (page.parent / path).resolve()
        assert ROOT in resolved.parents or resolved == ROOT, f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"


def test_docs_practices_page_is_linked_from_the_readme():
    assert "](docs/practices.md)" in (ROOT / "README.md").read_text()
    assert "PRACTICES.md" not in "".join(p.read_text() for p in DOCS)


def _layout() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_docs_readme_layout_names_every_module_config_group_experiment_and_doc():
    layout = _layout()
    modules = sorted({p.name for p in (ROOT / "sweeps").rglob("*.py") if p.name != "__init__.py"}
                     | {f"{p.parent.name}/" for p in (ROOT / "sweeps").glob("*/__init__.py")})
    groups = sorted(f"{p.name}/" for p in (ROOT / "conf").iterdir() if p.is_dir())
    names = sorted(p.stem for p in (ROOT / "conf/experiment").glob("*.yaml"))
    docs = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [name for name in [*modules, *groups, *names, *docs] if name not in layout]
    assert missing == [], "README's Layout section must name each of these"
