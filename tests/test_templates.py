"""Static checks over the templates and static files: nothing the Content-Security-Policy
blocks (`style-src 'self'`, scripts only by nonce; e-mail templates are exempt: mail clients
need inline styles and never see the site's policy), and no emoji (they draw as empty boxes
where no emoji font is installed: icons are inline SVG from templates/_components/icons.html)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from community.core.web import build_templates

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


# Emoji and pictographs: the emoji blocks, dingbats and miscellaneous symbols (✓ ✕ ☎), the
# geometric shapes used as icons (▲ ▼), emoji-capable arrows, and the joiners of emoji sequences.
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\u25a0-\u25ff"
    "\u2194-\u2199\u21a9\u21aa\ufe0f\u200d]"
)
TEXT_FILES = sorted(
    [
        *(ROOT / "templates").rglob("*.html"),
        *(ROOT / "templates").rglob("*.txt"),
        *(ROOT / "static" / "js").rglob("*.js"),
        *(ROOT / "static" / "css").rglob("*.css"),
    ]
)


def test_the_emoji_check_knows_an_emoji() -> None:
    assert all(EMOJI.search(sample) for sample in ("👍", "🔔", "✓", "▲", "✕", "🛟", "❤️"))
    assert not EMOJI.search("Solved → next · “quoted” – ¿Qué? ñ")


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_or_static_file_contains_emoji(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    found = [
        f"{match.group(0)!r} (U+{ord(match.group(0)):04X}) on line "
        f"{source.count(chr(10), 0, match.start()) + 1}"
        for match in EMOJI.finditer(source)
    ]
    assert found == []


ICONS = ["check", "thumbs-up", "thumbs-down", "bell", "bell-off", "book", "lifebuoy",
         "triangle-up", "triangle-down", "x"]  # fmt: skip


def test_icons_are_inline_svg_hidden_unless_they_carry_meaning() -> None:
    macro = build_templates().get_template("_components/icons.html").module.icon
    for name in ICONS:
        drawn = str(macro(name))
        assert drawn.startswith('<svg class="icon icon-') and drawn.endswith("</svg>"), name
        assert 'aria-hidden="true"' in drawn and "role=" not in drawn, name
        assert re.search(r"<(path|polyline|polygon|line|circle) ", drawn), name
        assert "style" not in drawn, name
        assert 'stroke="currentColor"' in drawn, name  # the text's colour
    named = str(macro("x", label="Remove this filter"))
    assert 'role="img" aria-label="Remove this filter"' in named and "aria-hidden" not in named
    with pytest.raises(UndefinedError):
        str(macro("no-such-icon"))
