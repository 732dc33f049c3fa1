"""Static checks over every page template: nothing the Content-Security-Policy blocks
(`style-src 'self'`, scripts only by nonce). E-mail templates are exempt: they are read in mail
clients, which need inline styles, and never served under the site's policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE_TEMPLATES = sorted(
    path
    for path in (ROOT / "templates").rglob("*.html")
    if path.relative_to(ROOT / "templates").parts[0] != "email"
)

# What a browser refuses under our policy, and what would need 'unsafe-eval' (hx-on).
BLOCKED = {
    "style attribute": re.compile(r"""\sstyle\s*=""", re.I),
    "style element": re.compile(r"<style[\s>]", re.I),
    "inline event handler": re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I),
    "hx-on handler": re.compile(r"\s(?:data-)?hx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)


def test_there_are_templates_to_check() -> None:
    assert len(PAGE_TEMPLATES) > 40


@pytest.mark.parametrize(
    "template", PAGE_TEMPLATES, ids=lambda path: str(path.relative_to(ROOT / "templates"))
)
def test_a_template_holds_nothing_the_csp_blocks(template: Path) -> None:
    source = template.read_text(encoding="utf-8")
    found = [
        f"{what} on line {source.count(chr(10), 0, match.start()) + 1}"
        for what, pattern in BLOCKED.items()
        for match in pattern.finditer(source)
    ]
    for match in SCRIPT_TAG.finditer(source):
        attributes = match.group(1)
        if "src=" not in attributes or "nonce=" not in attributes:
            found.append(f"script without src and nonce: {match.group(0)}")
    assert found == []
