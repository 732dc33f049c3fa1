"""Markdown to safe HTML: markdown-it-py with raw HTML off, then the nh3 (ammonia) sanitizer.

Two layers on purpose: the parser never emits raw HTML from the source, and the sanitizer
allow-lists what may reach a page anyway (tags, attributes, URL schemes), so a parser bug or a
future plugin cannot smuggle script in. Between the two, the token stream is adjusted:
@mentions of known people become profile links (only in plain text: never in code or inside
another link), emphasis deeper than a few levels stays literal text, and table alignment is
carried as an attribute the sanitizer keeps. Bump HTML_VERSION whenever the output changes;
stored posts record the version that rendered them and can be re-rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

HTML_VERSION = 3  # 3: pictures uploaded to this site (/uploads/<key>) are shown
MAX_NESTING = 20
MAX_EMPHASIS_DEPTH = 6
MAX_MENTIONS = 20

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
# A mention starts after a boundary that is not part of a word, an e-mail or a link path.
MENTION = re.compile(r"(?<![\w@/.\-\[])@([^\W_][\w.\-]{1,29})", re.UNICODE)
_ALIGN = re.compile(r"^text-align:(left|right|center)$")
# A picture uploaded to this site: served by it with its own access rules and safe headers
# (community/upload_routes.py). Exactly this shape: no other relative path, no "//host".
_UPLOADED_IMAGE = re.compile(r"/uploads/[A-Za-z0-9_-]{16,40}")
_EMPHASIS = {"em_open": "em_close", "strong_open": "strong_close"}


@cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    return parser.enable(["table", "strikethrough"])


def parse(source: str) -> list[Token]:
    return _parser().parse(source)


def _mention_name(match: re.Match[str]) -> str:
    return match.group(1).rstrip(".-")


def mentioned_keys(tokens: Sequence[Token]) -> list[str]:
    """Case-folded @names in plain text (not in code, not inside links), first seen first."""
    keys: list[str] = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        link_depth = 0
        for child in token.children:
            if child.type == "link_open":
                link_depth += 1
            elif child.type == "link_close":
                link_depth -= 1
            elif child.type == "text" and link_depth == 0:
                for match in MENTION.finditer(child.content):
                    key = _mention_name(match).casefold()
                    if key not in keys:
                        keys.append(key)
    return keys[:MAX_MENTIONS]


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _link_mentions(text: str, usernames: Mapping[str, str]) -> list[Token]:
    """Split one text token into text and profile links for the known names in it."""
    pieces: list[Token] = []
    position = 0
    for match in MENTION.finditer(text):
        name = _mention_name(match)
        username = usernames.get(name.casefold())
        if username is None:
            continue
        if match.start() > position:
            pieces.append(_text(text[position : match.start()]))
        link = Token("link_open", "a", 1)
        link.attrs = {"href": f"/u/{username}"}
        pieces.extend([link, _text(f"@{username}"), Token("link_close", "a", -1)])
        position = match.start() + 1 + len(name)
    if not pieces:
        return [_text(text)]
    if position < len(text):
        pieces.append(_text(text[position:]))
    return pieces


def _adjust_inline(children: list[Token], usernames: Mapping[str, str]) -> list[Token]:
    adjusted: list[Token] = []
    link_depth = 0
    emphasis: list[bool] = []  # for each open em/strong: was it kept (True) or made text?
    for child in children:
        if child.type in _EMPHASIS:
            keep = sum(emphasis) < MAX_EMPHASIS_DEPTH
            emphasis.append(keep)
            adjusted.append(child if keep else _text(child.markup))
            continue
        if child.type in _EMPHASIS.values():
            keep = emphasis.pop() if emphasis else True
            adjusted.append(child if keep else _text(child.markup))
            continue
        if child.type == "link_open":
            link_depth += 1
        elif child.type == "link_close":
            link_depth -= 1
        elif child.type == "text" and link_depth == 0 and usernames:
            adjusted.extend(_link_mentions(child.content, usernames))
            continue
        adjusted.append(child)
    return adjusted


def render_tokens(tokens: list[Token], usernames: Mapping[str, str] | None = None) -> str:
    """Render parsed tokens: mentions linked for `usernames` (key -> username), sanitized."""
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrGet("style")
            if isinstance(style, str) and (aligned := _ALIGN.match(style)):
                token.attrs = {"align": aligned.group(1)}
        elif token.type == "inline" and token.children:
            token.children = _adjust_inline(token.children, usernames or {})
    parser = _parser()
    return sanitize_html(parser.renderer.render(tokens, parser.options, {}))


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        # Images only over https (no tracking pixels over http, no data: blobs) or our own.
        return (
            value
            if value.lower().startswith("https://") or _UPLOADED_IMAGE.fullmatch(value)
            else None
        )
    if tag == "code" and attribute == "class" and not value.startswith("language-"):
        return None
    if attribute == "align" and value not in ("left", "right", "center"):
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
    """Markdown source to HTML that is safe to insert into a page unescaped (no mentions)."""
    return render_tokens(parse(source))
