"""The text a document is embedded as: its title, the start of the question and the start of
the best answer, in plain text.

Sentence encoders read a bounded amount (all-MiniLM-L6-v2 stops at 256 word pieces, about
1,000 characters of English), and what a thread is about is said first: the title and the first
lines of the question. Without a bound on the question, a long one would push the answer out of
MiniLM's window entirely and make the multilingual model (which reads everything) slower.
"""

from __future__ import annotations

# Characters kept of the question and of the best answer (measured on the duplicate pairs of
# the Stack Exchange dumps: bench/bench_embeddings.py --text-variants).
QUESTION_CHARS = 600
ANSWER_CHARS = 400


def shorten(text: str, limit: int) -> str:
    """The first `limit` characters of `text` (spaces collapsed), ending on a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut[:limit]).rstrip()


def document_text(
    title: str,
    question: str = "",
    answer: str = "",
    *,
    question_chars: int = QUESTION_CHARS,
    answer_chars: int = ANSWER_CHARS,
) -> str:
    """Plain-text parts (the caller strips HTML) joined in reading order, empty parts left out.
    Used for threads (question and best answer) and KB entries (summary and body)."""
    parts = [
        " ".join(title.split()),
        shorten(question, question_chars) if question_chars else "",
        shorten(answer, answer_chars) if answer_chars else "",
    ]
    return "\n".join(part for part in parts if part)
