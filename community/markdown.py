"""Markdown to safe HTML: markdown-it-py with raw HTML off, then the nh3 (ammonia) sanitizer.

Two layers on purpose: the parser never emits raw HTML from the source, and the sanitizer
allow-lists what may reach a page anyway (tags, attributes, URL schemes), so a parser bug or a
future plugin cannot smuggle script in. Bump HTML_VERSION whenever the policy changes; stored
posts record the version that rendered them and can be re-rendered.
"""

from __future__ import annotations

from functools import cache

import nh3
from markdown_it import MarkdownIt

HTML_VERSION = 1
MAX_NESTING = 20

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
        "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
        "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener noreferrer"


@cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    return parser.enable(["table", "strikethrough"])


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("https://"):
        return None  # images only over https: no tracking pixels over http, no data: blobs
    if tag == "code" and attribute == "class" and not value.startswith("language-"):
        return None
    return value


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(source: str) -> str:
    """Markdown source to HTML that is safe to insert into a page unescaped."""
    return sanitize_html(_parser().render(source))
