"""The ask form's suggestions: every visible thread with an answer and the KB, by relevance
with a boost for KB entries and solved threads; a duplicate stands for its original; closed
threads never; each suggestion says its state; one rare word does not hide the rest."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from community import voting
from community.core.db import make_session_factory
from community.core.models import Role, Thread, User
from community.core.settings import Settings
from community.worker import Worker
from kb.suggestions import SUGGEST_BOOST, ranked_candidates
from moderation.actions import CloseReason, close
from tests.conftest import QA, drain

UserFactory = Callable[..., User]


def _suggested(client: TestClient, title: str, language: str = "en") -> list[tuple[str, str]]:
    """(thread or article link, the state shown) of each suggestion, in order."""
    page = client.get(
        "/b/acme/kb/suggest",
        params={"title": title},
        headers={"HX-Request": "true", "Accept-Language": language},
    )
    assert page.status_code == 200
    return re.findall(
        r'<a href="([^"]+)"[^>]*data-deflect[^>]*>.*?</a>\s*<span class="badge[^"]*" '
        r'data-state="[a-z]+">([^<]+)</span>',
        page.text,
        flags=re.S,
    )


def _answered(qa: QA, asker: User, helper: User, title: str, body: str) -> Thread:
    thread = qa.ask(asker, title=title, body=body)
    qa.answer(helper, thread, f"Here is what worked for me ({title}).")
    return thread


def _solved(db: Session, qa: QA, asker: User, helper: User, title: str, body: str) -> Thread:
    thread = qa.ask(asker, title=title, body=body)
    answer = qa.answer(helper, thread, f"The fix for this ({title}).")
    voting.accept(db, asker, answer.id)
    db.commit()
    return thread


def test_suggestions_draw_answered_threads_replace_duplicates_and_skip_closed_ones(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    moderator = make_user("moddy", role=Role.MODERATOR)
    answered = _answered(
        qa, asker, helper, "Tubeless tyre keeps losing pressure", "Sealant added twice."
    )
    solved = _solved(
        db, qa, asker, helper, "Tubeless tyre burps on hard corners", "Pressure is 30 psi."
    )
    unanswered = qa.ask(asker, title="Tubeless tyre valve stuck", body="Valve core will not move.")
    off_topic = _answered(
        qa, asker, helper, "Tubeless tyre brands for sale cheap", "Which shop sells them?"
    )
    duplicate = qa.ask(asker, title="Tubeless sealant dries out fast", body="Every month again.")
    original = _answered(qa, asker, helper, "How often to refresh sealant", "Mine goes dry.")
    close(db, moderator, off_topic, CloseReason.OFF_TOPIC)
    close(db, moderator, duplicate, CloseReason.DUPLICATE, duplicate_of=original)
    db.commit()
    drain(Worker(settings, make_session_factory(engine)))

    found = dict(_suggested(client, "tubeless tyre pressure"))
    assert found[f"/t/{answered.id}"] == "Answered"
    assert found[f"/t/{solved.id}"] == "Solved"
    assert f"/t/{unanswered.id}" not in found  # no answer yet: nothing to learn from it
    assert f"/t/{off_topic.id}" not in found  # closed: never suggested

    replaced = _suggested(client, "tubeless sealant dries out")
    assert (f"/t/{original.id}", "Answered") in replaced
    assert f"/t/{duplicate.id}" not in dict(replaced)

    spanish = dict(_suggested(client, "tubeless tyre pressure", "es"))
    assert spanish[f"/t/{answered.id}"] == "Respondido"
    assert spanish[f"/t/{solved.id}"] == "Resuelto"


def test_a_solved_thread_is_boosted_but_a_better_answered_match_comes_first(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    close_match = _answered(
        qa, asker, helper, "Rear derailleur skips gears", "Skipping when climbing."
    )
    loose = _solved(db, qa, asker, helper, "Derailleur skips gears", "After a fall.")
    twin_answered = _answered(
        qa, asker, helper, "Headset creaks when braking", "A creak from the front."
    )
    twin_solved = _solved(db, qa, asker, helper, "Headset creaks when braking", "Front creak.")
    drain(Worker(settings, make_session_factory(engine)))

    links = [link for link, _state in _suggested(client, "rear derailleur skips gears")]
    assert f"/t/{loose.id}" in links, links
    assert links.index(f"/t/{close_match.id}") < links.index(f"/t/{loose.id}")

    twins = [link for link, _state in _suggested(client, "headset creaks when braking")]
    assert twins[:2] == [f"/t/{twin_solved.id}", f"/t/{twin_answered.id}"]


def _hit(score: float, **fields: object) -> dict[str, object]:
    return {"_federation": {"weightedRankingScore": score}, **fields}


def test_kb_entries_and_solved_threads_win_ties_only() -> None:
    hits = [
        _hit(0.9, thread_id=1, solved=False),  # answered, matches best
        _hit(0.8, thread_id=2, solved=False),  # answered, tied with the two below
        _hit(0.8, thread_id=3, solved=True),
        _hit(0.8, type="article", entry_id=7),
        _hit(0.7, thread_id=4, solved=True, duplicate_of=5),  # stands for its original
    ]
    order = [(c.kind, c.entry_id) for c in ranked_candidates(hits, SUGGEST_BOOST)]
    assert order == [("thread", 1), ("thread", 3), ("article", 7), ("thread", 2), ("thread", 5)]
    # A multiplicative boost (the evaluation's variants) lifts them over better matches.
    boosted = [(c.kind, c.entry_id) for c in ranked_candidates(hits, 1.2)]
    assert boosted[:2] == [("thread", 3), ("article", 7)]


def test_one_rare_word_does_not_hide_every_other_match(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    """The "frequency" strategy alone keeps only threads with the rarest typed word: here
    "garmin", which the thread about squealing brake pads does not contain."""
    asker, helper = make_user("asker"), make_user("helper")
    wanted = _solved(
        db, qa, asker, helper, "Disc brake pads squeal in the wet", "Loud noise after rain."
    )
    for title in ("Brake pads wear fast", "Squeal from disc brake", "Wet brake pads glaze"):
        _solved(db, qa, asker, helper, title, "Brake trouble again.")
    _solved(db, qa, asker, helper, "Garmin mount snapped", "The garmin fell off.")
    drain(Worker(settings, make_session_factory(engine)))

    links = [link for link, _state in _suggested(client, "garmin disc brake pads squeal wet")]
    assert f"/t/{wanted.id}" in links


def test_a_thread_in_the_kb_is_suggested_once_as_its_kb_entry(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    """A solved thread promoted to a community solution is in both indexes: one suggestion,
    recorded as the KB entry it is when opened."""
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Router keeps rebooting at night", body="Every night at 3.")
    answer = qa.answer(helper, thread, "Turn off the scheduled firmware check.")
    for fan in (make_user("fan1"), make_user("fan2"), make_user("fan3")):
        voting.cast_vote(db, fan, answer.id, 1)
    voting.accept(db, asker, answer.id)
    db.commit()
    drain(Worker(settings, make_session_factory(engine)))
    page = client.get(
        "/b/acme/kb/suggest",
        params={"title": "router rebooting at night"},
        headers={"HX-Request": "true"},
    )
    links = re.findall(r'<a href="/t/(\d+)"[^>]*data-entry-type="([a-z]+)"', page.text)
    assert links == [(str(thread.id), "solution")], page.text
