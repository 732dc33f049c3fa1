"""The synthetic community's words: topic tables, phrase templates and names.

The large tables live in `data/*.txt` (see the header of any of them for the format); the few
values that need Python (leading spaces, newlines in code blocks) stay here. Templates name
their slots in braces ("My {p} {symptom}{context}."); `text.py` fills them.
"""

from __future__ import annotations

import itertools
from importlib import resources

Table = tuple[tuple[str, ...], ...]

# Families: what a thread is about, which decides its templates.
HOWTO, DEVICE, ACCOUNT, IDEA, PRAISE = "howto", "device", "account", "idea", "praise"


def _sections(file: str) -> dict[str, list[str]]:
    """The rows of every table in data/<file>.txt, with continuation lines joined on."""
    data = resources.files("community.importing.synthetic").joinpath("data", f"{file}.txt")
    sections: dict[str, list[str]] = {}
    rows: list[str] | None = None
    for raw in data.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            if line[1:-1] in sections:
                raise ValueError(f"{file}.txt: table {line} appears twice")
            rows = sections[line[1:-1]] = []
        elif rows is None:
            raise ValueError(f"{file}.txt: a row before the first [table] line: {line}")
        elif line.startswith("|") and rows:
            rows[-1] = f"{rows[-1]} {line}"
        else:
            rows.append(line)
    return sections


def _table(sections: dict[str, list[str]], name: str, width: int) -> Table:
    table = tuple(tuple(field.strip() for field in row.split(" | ")) for row in sections[name])
    for row in table:
        if len(row) != width:
            raise ValueError(f"phrase table {name!r} row needs {width} fields: {row}")
    return table


def _words(sections: dict[str, list[str]], name: str) -> tuple[str, ...]:
    return tuple(row[0] for row in _table(sections, name, 1))


_topics = _sections("topics")
# tag | English noun | Spanish noun | product line (model names are "Nova 5 Pro" and the like)
PRODUCTS = _table(_topics, "products", 4)
MODEL_SUFFIXES = ("", " Pro", " Mini", " Max", " Lite", " S", " Plus", " X")
# tag | English, third person | Spanish, third person
SYMPTOMS = _table(_topics, "symptoms", 3)
# tag | English infinitive | Spanish infinitive; {p} is the product
TASKS = _table(_topics, "tasks", 3)
# tag | English title | Spanish title | English detail | Spanish detail
ACCOUNT_ISSUES = _table(_topics, "account-issues", 5)
# tag | English noun phrase | Spanish noun phrase
FEATURES = _table(_topics, "features", 3)
# Tags that describe the setting rather than the topic, added on top.
EXTRA_TAGS = _words(_topics, "extra-tags")

# The tables below are English | Spanish.
NOTHING: Table = (("", ""),)  # a slot that is sometimes left out

_questions = _sections("questions")
CONTEXTS = NOTHING + _table(_questions, "contexts", 2)
TRIED = _table(_questions, "tried", 2)
DETAILS = _table(_questions, "details", 2)
GREETINGS = NOTHING + _table(_questions, "greetings", 2)
ASKS = _table(_questions, "asks", 2)
HOWTO_WANTS = _table(_questions, "howto-wants", 2)
HOWTO_LOOKED = _table(_questions, "howto-looked", 2)
ACCOUNT_FOLLOW_UPS = NOTHING + _table(_questions, "account-follow-ups", 2)
ORDER_STATUS = _table(_questions, "order-status", 2)
COMPLAINT_DEMANDS = _table(_questions, "complaint-demands", 2)
IDEA_WISHES = _table(_questions, "idea-wishes", 2)
IDEA_REASONS = _table(_questions, "idea-reasons", 2)
IDEA_CLOSES = _table(_questions, "idea-closes", 2)
PRAISE_BODIES = _table(_questions, "praise-bodies", 2)
PRAISE_CLOSES = _table(_questions, "praise-closes", 2)

# Titles per kind of thread.
_titles = _sections("titles")
TITLES: dict[str, Table] = {name: _table(_titles, name, 2) for name in _titles}

_answers = _sections("answers")
ANSWER_INTROS = NOTHING + _table(_answers, "answer-intros", 2)
CAUSES = _table(_answers, "causes", 2)
DEVICE_STEPS = _table(_answers, "device-steps", 2)
ACCOUNT_STEPS = _table(_answers, "account-steps", 2)
ANSWER_CLOSES = NOTHING + _table(_answers, "answer-closes", 2)
REPLIES = _table(_answers, "replies", 2)
_RUN_THIS = (
    "If you're comfortable with a terminal, run this from a computer on the same network:",
    "Si te manejas con la terminal, ejecuta esto desde un ordenador en la misma red:",
)
_CONFIG = (
    "These are the router settings that made it stable for me:",
    "Esta es la configuración del router con la que me va estable:",
)
# (English intro, Spanish intro, fenced block)
CODE_BLOCKS = (
    (*_RUN_THIS, "```sh\nping -c 20 192.168.1.{ip}\n```"),
    (*_RUN_THIS, "```sh\ncurl -I http://192.168.1.{ip}/status\n```"),
    (*_RUN_THIS, "```sh\nadb logcat | grep -i {line}\n```"),
    (*_CONFIG, "```yaml\nwifi:\n  band: 2.4ghz\n  channel: {ch}\n```"),
)

_comments = _sections("comments")
QUESTION_COMMENTS = _table(_comments, "question-comments", 2)
ANSWER_COMMENTS = _table(_comments, "answer-comments", 2)

OS = ("Android 14", "Android 15", "Android 13", "iOS 18", "iOS 17", "iPadOS 18", "HarmonyOS 4")
PLANS = ("Plus", "Premium", "Family", "Care+", "Cloud 30", "Pro")
COLORS = (("white", "blanco"), ("blue", "azul"), ("orange", "naranja"), ("green", "verde"))
PROMOS = ("SAVE", "WELCOME", "SPRING", "FAMILY")

_names = _sections("names")
EN_FIRST = _words(_names, "en-first")
EN_LAST = _words(_names, "en-last")
ES_FIRST = _words(_names, "es-first")
ES_LAST = _words(_names, "es-last")
HANDLE_WORDS = (_words(_names, "handle-adjectives"), _words(_names, "handle-nouns"))

TAG_VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(
        itertools.chain(
            (row[0] for row in PRODUCTS),
            (row[0] for row in SYMPTOMS),
            (row[0] for row in TASKS),
            (row[0] for row in ACCOUNT_ISSUES),
            (row[0] for row in FEATURES),
            EXTRA_TAGS,
        )
    )
)
