"""The synthetic community's text: display names, and question and answer bodies filled from
the templates in `vocabulary.py`, in the thread's language."""

from __future__ import annotations

import random
from collections.abc import Callable

from community.core.models import ThreadKind
from community.importing.synthetic.outline import Topic
from community.importing.synthetic.randomness import between, choice
from community.importing.synthetic.vocabulary import (
    ACCOUNT,
    ACCOUNT_FOLLOW_UPS,
    ACCOUNT_ISSUES,
    ACCOUNT_STEPS,
    ANSWER_CLOSES,
    ANSWER_INTROS,
    ASKS,
    CAUSES,
    CODE_BLOCKS,
    COLORS,
    COMPLAINT_DEMANDS,
    CONTEXTS,
    DETAILS,
    DEVICE,
    DEVICE_STEPS,
    EN_FIRST,
    EN_LAST,
    ES_FIRST,
    ES_LAST,
    FEATURES,
    GREETINGS,
    HANDLE_WORDS,
    HOWTO,
    HOWTO_LOOKED,
    HOWTO_WANTS,
    IDEA,
    IDEA_CLOSES,
    IDEA_REASONS,
    IDEA_WISHES,
    ORDER_STATUS,
    OS,
    PLANS,
    PRAISE,
    PRAISE_BODIES,
    PRAISE_CLOSES,
    PRODUCTS,
    PROMOS,
    REPLIES,
    SYMPTOMS,
    TASKS,
    TITLES,
    TRIED,
)


def display_name(rng: random.Random, locale: str) -> str:
    es = locale == "es"
    first = choice(rng, ES_FIRST if es else EN_FIRST)
    last = choice(rng, ES_LAST if es else EN_LAST)
    style = rng.random()
    if style < 0.45:
        if es and rng.random() < 0.4:
            return f"{first} {last} {choice(rng, ES_LAST)}"
        return f"{first} {last}"
    if style < 0.65:
        return f"{first} {last[0]}."
    if style < 0.8:
        return first
    if rng.random() < 0.5:
        adjective, noun = choice(rng, HANDLE_WORDS[0]), choice(rng, HANDLE_WORDS[1])
        return f"{adjective}_{noun}{between(rng, 1, 99)}"
    return f"{first.lower()}{between(rng, 1, 999)}"


class Slots(dict[str, str]):
    """The values templates mention, in the thread's language, drawn when first asked for
    (`str.format_map` looks missing keys up through `__missing__`). Within one post a slot
    keeps its value, so a title and its body name the same model."""

    def __init__(self, rng: random.Random, topic: Topic, es: bool) -> None:
        super().__init__()
        self.rng = rng
        self.topic = topic
        self.es = es
        self.lang = int(es)

    def __missing__(self, key: str) -> str:
        value = _SLOT_MAKERS[key](self)
        self[key] = value
        return value

    def fill(self, template: str) -> str:
        return template.format_map(self)


def _product_phrase(slots: Slots) -> str:
    noun, model = slots["noun"], slots.topic.model
    if slots.rng.random() < 0.5:
        return noun
    return f"{noun} {model}" if slots.es else f"{model} {noun}"


def _context(slots: Slots) -> str:
    """Where it happens, with its leading space: templates write "{symptom}{context}"."""
    context = choice(slots.rng, CONTEXTS)[slots.lang]
    return f" {slots.fill(context)}" if context else ""


_SLOT_MAKERS: dict[str, Callable[[Slots], str]] = {
    "p": _product_phrase,
    "noun": lambda s: PRODUCTS[s.topic.product][1 + s.lang],
    "model": lambda s: s.topic.model,
    "line": lambda s: PRODUCTS[s.topic.product][3].lower(),
    "symptom": lambda s: s.fill(SYMPTOMS[s.topic.symptom][1 + s.lang]),
    "task": lambda s: s.fill(TASKS[s.topic.task][1 + s.lang]),
    "issue": lambda s: s.fill(ACCOUNT_ISSUES[s.topic.issue][1 + s.lang]),
    "issue_detail": lambda s: s.fill(ACCOUNT_ISSUES[s.topic.issue][3 + s.lang]),
    "feature": lambda s: FEATURES[s.topic.feature][1 + s.lang],
    "context": _context,
    "cause": lambda s: choice(s.rng, CAUSES)[s.lang],
    "code": lambda s: f"E-{between(s.rng, 100, 9999)}",
    "fw": lambda s: f"{between(s.rng, 2, 6)}.{between(s.rng, 0, 24)}.{between(s.rng, 0, 9)}",
    "appver": lambda s: f"{between(s.rng, 3, 9)}.{between(s.rng, 0, 40)}",
    "os": lambda s: choice(s.rng, OS),
    "n": lambda s: str(between(s.rng, 2, 21)),
    "pct": lambda s: str(5 * between(s.rng, 1, 19)),
    "hour": lambda s: choice(s.rng, ("19", "20", "21", "22", "23", "00", "01", "02")),
    "order": lambda s: str(between(s.rng, 10_000_000, 99_999_999)),
    "plan": lambda s: choice(s.rng, PLANS),
    "promo": lambda s: f"{choice(s.rng, PROMOS)}{between(s.rng, 10, 40)}",
    "agent": lambda s: choice(s.rng, ES_FIRST if s.es else EN_FIRST),
    "status": lambda s: choice(s.rng, ORDER_STATUS)[s.lang],
    "secs": lambda s: str(between(s.rng, 5, 15)),
    "color": lambda s: choice(s.rng, COLORS)[s.lang],
    "ip": lambda s: str(between(s.rng, 20, 250)),
    "ch": lambda s: choice(s.rng, ("1", "6", "11")),
}


def _title(template: str, slots: Slots) -> str:
    """Fill, tidy and clip a title to 15-150 characters."""
    title = " ".join(slots.fill(template).split()).replace(" ?", "?")
    title = title[0].upper() + title[1:]
    if len(title) > 150:
        title = title[: title.rfind(" ", 0, 148)].rstrip(",;:") + "…"
    return title


def _paragraphs(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def question_text(
    rng: random.Random, family: str, kind: ThreadKind, slots: Slots
) -> tuple[str, str]:
    lang = slots.lang
    greeting = choice(rng, GREETINGS)[lang]
    ask = choice(rng, ASKS)[lang]
    if family == HOWTO:
        title = choice(rng, TITLES["howto"])[lang]
        want = choice(rng, HOWTO_WANTS)[lang]
        looked = choice(rng, HOWTO_LOOKED)[lang]
        body = _paragraphs(greeting, f"{want} {looked}", ask)
    elif family == DEVICE:
        key = {ThreadKind.QUESTION: "device-question", ThreadKind.COMPLAINT: "device-complaint"}
        title = choice(rng, TITLES[key.get(kind, "device-problem")])[lang]
        opening = ("My {p} {symptom}{context}.", "Mi {p} {symptom}{context}.")[lang]
        detail = choice(rng, DETAILS)[lang]
        first = int(rng.random() * len(TRIED))
        second = int(rng.random() * (len(TRIED) - 1))
        second += second >= first  # two different things tried
        tried = (
            f"I already {TRIED[first][0]} and {TRIED[second][0]}, but nothing changed.",
            f"Ya {TRIED[first][1]} y {TRIED[second][1]}, pero sigue igual.",
        )[lang]
        facts = ""
        if rng.random() < 0.4:
            labels = (("Details", "Model", "Phone"), ("Datos", "Modelo", "Móvil"))[lang]
            facts = f"{labels[0]}:\n\n- {labels[1]}: {{model}}\n- Firmware: `{{fw}}`"
            facts += f"\n- {labels[2]}: {{os}}"
        closing = choice(rng, COMPLAINT_DEMANDS)[lang] if kind is ThreadKind.COMPLAINT else ask
        body = _paragraphs(greeting, f"{opening} {detail}", tried, facts, closing)
    elif family == ACCOUNT:
        if kind is ThreadKind.COMPLAINT:
            title = choice(rng, TITLES["account-complaint"])[lang]
            closing = choice(rng, COMPLAINT_DEMANDS)[lang]
        else:
            title = "{issue}"
            closing = ask
        issue = "{issue}" if slots["issue"].endswith("?") else "{issue}."
        follow_up = choice(rng, ACCOUNT_FOLLOW_UPS)[lang]
        body = _paragraphs(greeting, f"{issue} {{issue_detail}} {follow_up}", closing)
    elif family == IDEA:
        title = choice(rng, TITLES["idea"])[lang]
        wish = choice(rng, IDEA_WISHES)[lang]
        reason = choice(rng, IDEA_REASONS)[lang]
        body = _paragraphs(f"{wish} {reason}", choice(rng, IDEA_CLOSES)[lang])
    else:
        title = choice(rng, TITLES["praise"])[lang]
        text = choice(rng, PRAISE_BODIES)[lang]
        body = _paragraphs(greeting, text, choice(rng, PRAISE_CLOSES)[lang])
    return _title(title, slots), slots.fill(body)


def answer_text(rng: random.Random, family: str, slots: Slots) -> str:
    lang = slots.lang
    if family in (IDEA, PRAISE) or (family == DEVICE and rng.random() < 0.1):
        return slots.fill(choice(rng, REPLIES)[lang])
    pool = ACCOUNT_STEPS if family == ACCOUNT else DEVICE_STEPS
    steps = [step[lang] for step in rng.sample(pool, between(rng, 2, 5))]
    style = rng.random()
    if style < 0.55:
        listed = "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))
    elif style < 0.8:
        listed = "\n".join(f"- {step}" for step in steps)
    else:
        listed = " ".join(steps)
    code = ""
    if family != ACCOUNT and rng.random() < 0.1:
        block = choice(rng, CODE_BLOCKS)
        code = f"{block[lang]}\n\n{block[2]}"
    intro = choice(rng, ANSWER_INTROS)[lang]
    close = choice(rng, ANSWER_CLOSES)[lang]
    return slots.fill(_paragraphs(intro, listed, code, close))
