"""Placeholders in a saved reply: `{author_name}`, `{thread_title}`, `{kb_link}`, `{agent_name}`.

They are replaced by a regular expression that looks names up in a plain dict, never by
str.format: a body is written by an admin but read by the whole support team, and format fields
such as `{0.__class__}` or `{author_name.__dict__}` would otherwise reach Python attributes.
Anything in braces that is not a known name is left exactly as typed."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = ("author_name", "thread_title", "kb_link", "agent_name")

# One field: braces around anything without braces or line breaks (so "{ }" and code samples
# with nested braces are not mistaken for fields, and a stray "{" never swallows a paragraph).
_FIELD = re.compile(r"\{([^{}\n]{1,60})\}")
# What would make a name or a title Markdown (a link, emphasis, raw HTML) once in the answer.
_MARKDOWN_SPECIAL = re.compile(r"([\\\[\]*_`<>#|!])")


def unknown_placeholders(body: str) -> list[str]:
    """The `{names}` in `body` that are not placeholders, in order of first appearance."""
    seen: list[str] = []
    for match in _FIELD.finditer(body):
        name = match.group(1)
        if name not in PLACEHOLDERS and name not in seen:
            seen.append(name)
    return seen


def plain_markdown(text: str) -> str:
    """`text` as literal words in Markdown: a member called "[click](https://x)" stays text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def fill(body: str, values: Mapping[str, str]) -> str:
    """`body` with each known placeholder replaced by its value; unknown fields kept as typed."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in PLACEHOLDERS and name in values else match.group(0)

    return _FIELD.sub(replace, body)
