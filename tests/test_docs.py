"""What the README and docs tell a newcomer to run must be true today."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _shell_lines(text: str) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S)
    return [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines()]


def test_no_page_installs_the_package_from_an_index_it_is_not_on() -> None:
    """finetune-wb is not on PyPI: `pip install finetune-wb` would fail, so no page may say it."""
    from_index = re.compile(r"^pip install [\"']?finetune-wb(\[|[\"'\s]|$)")
    offenders = [
        f"{page.relative_to(REPO)}: {line}"
        for page in PAGES
        for line in _shell_lines(page.read_text(encoding="utf-8"))
        if from_index.match(line)
    ]
    assert offenders == []


def test_the_quick_start_holds_exactly_the_two_make_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert block.split() == ["make", "demo", "make", "test"]
