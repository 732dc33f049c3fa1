"""Imported questions are stored and indexed in the language of their text; the source's locale
(a dump has none: English) is only the fallback for text too short or too mixed to tell."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import meilisearch
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from community.core.db import make_session_factory
from community.core.import_models import ImportKey
from community.core.models import Thread
from community.core.settings import Settings
from community.importing.records import (
    AnswerRecord,
    Closure,
    CommentRecord,
    DuplicateLink,
    Part,
    QuestionRecord,
    Skips,
    UserRecord,
    VoteTotals,
)
from community.importing.service import Importer, ensure_forum
from community.importing.stackexchange import StackExchangeDump
from kb.search import SearchEngine
from tests.conftest import MEILI_TEST_KEY, fresh
from tests.importing.dumps import Ids, question, realistic_dump

T = TypeVar("T")
SITE = "iot.stackexchange.com"
BRAND, FORUM = "iot", "questions"
Q_SPANISH, Q_SHORT = 40, 41
SPANISH_TITLE = "¿Cómo conecto el sensor Zigbee al hub sin la app?"
SPANISH_BODY = (
    "<p>Compré un sensor de puerta y el hub no lo encuentra. He probado a reiniciar los dos "
    "y a acercarlos, pero sigue sin aparecer en la lista de dispositivos.</p>"
    "<pre><code>zigbee2mqtt: device not found, retrying pairing in 30 seconds</code></pre>"
)


@pytest.fixture
def session_factory(engine: Engine, db: Session) -> sessionmaker[Session]:
    """The importer's own sessions (it commits per batch); `db` clears the tables after."""
    return make_session_factory(engine)


def _locales(db: Session, source: str) -> dict[int, str]:
    fresh(db)
    rows = db.execute(
        select(ImportKey.external_id, Thread.locale)
        .join(Thread, Thread.id == ImportKey.local_id)
        .where(ImportKey.source == source, ImportKey.kind == "question")
    )
    return {int(external): locale for external, locale in rows}


def test_a_spanish_question_in_a_dump_is_imported_and_indexed_as_spanish(
    session_factory: sessionmaker[Session], tmp_path: Path, db: Session, settings: Settings
) -> None:
    dump = realistic_dump()
    dump.posts += [
        question(
            Q_SPANISH,
            title=SPANISH_TITLE,
            body=SPANISH_BODY,
            tags="<zigbee>",
            owner=Ids.BO,
            created="2017-01-04T10:00:00.000",
        ),
        # Too little text to tell: the dump's English stands.
        question(
            Q_SHORT,
            title="Zigbee o Z-Wave",
            body="<p>¿Cuál?</p>",
            tags="<zigbee>",
            owner=Ids.BO,
            created="2017-01-04T11:00:00.000",
        ),
    ]
    directory = dump.write(tmp_path / "dump")
    source = StackExchangeDump(directory, site=SITE)
    source.validate()
    with session_factory() as session:
        forum_id = ensure_forum(session, BRAND, FORUM, forum_name=source.site_label).id
        session.commit()
    engine = SearchEngine(settings)
    Importer(session_factory, source, forum_id=forum_id, search=engine).run()

    locales = _locales(db, source.name)
    assert locales[Q_SPANISH] == "es"
    assert locales[Q_SHORT] == "en"
    assert {locales[external] for external in Ids.QUESTIONS} == {"en"}

    thread_id = db.scalars(
        select(ImportKey.local_id).where(
            ImportKey.source == source.name,
            ImportKey.kind == "question",
            ImportKey.external_id == Q_SPANISH,
        )
    ).one()
    index = meilisearch.Client(settings.meili_url, MEILI_TEST_KEY).index(
        engine.threads_index(BRAND)
    )
    document = dict(index.get_document(str(thread_id)))
    assert document["locale"] == "es"
    assert document["title_es"] == SPANISH_TITLE
    assert "title_en" not in document


# --- a source that states a locale -------------------------------------------------------------

WHEN = datetime(2025, 5, 1, tzinfo=UTC)


def _part(label: str, records: list[T]) -> Part[T]:
    return Part(
        label=label, records=iter(records), size=len(records), position=lambda: 0, skips=Skips()
    )


class _QuestionsOnly:
    """A source of questions alone, each with the locale the source claims for it."""

    name = "test:language"
    site_label = "example.com"

    def __init__(self, questions: list[QuestionRecord]) -> None:
        self._questions = questions

    def users(self) -> Part[UserRecord]:
        return _part("users", [])

    def tags(self) -> Part[str]:
        return _part("tags", [])

    def questions(self) -> Part[QuestionRecord]:
        return _part("questions", self._questions)

    def answers(self) -> Part[AnswerRecord]:
        return _part("answers", [])

    def comments(self) -> Part[CommentRecord]:
        return _part("comments", [])

    def votes(self) -> Part[VoteTotals]:
        return _part("votes", [])

    def duplicates(self) -> Part[DuplicateLink]:
        return _part("duplicates", [])

    def closures(self) -> Part[Closure]:
        return _part("closures", [])


def _record(external_id: int, title: str, body: str, locale: str) -> QuestionRecord:
    return QuestionRecord(
        external_id=external_id,
        author_external_id=None,
        title=title,
        body_markdown=body,
        tags=[],
        view_count=0,
        score=0,
        created_at=WHEN,
        last_activity_at=WHEN,
        locale=locale,
    )


def _run(session_factory: sessionmaker[Session], source: _QuestionsOnly) -> None:
    with session_factory() as session:
        forum_id = ensure_forum(session, "acme", "help", forum_name="Help").id
        session.commit()
    # Batches of three: each question's language must land on its own thread.
    Importer(session_factory, source, forum_id=forum_id, search=None, batch_size=3).run()


def test_the_text_overrides_the_locale_a_source_claims_only_when_clear(
    session_factory: sessionmaker[Session], db: Session
) -> None:
    source = _QuestionsOnly(
        [
            _record(
                1,
                "Router reboots every night at midnight",
                "Since the last firmware update my router restarts at 00:00 and the internet "
                "drops for five minutes. Is there a setting for this?",
                locale="es",
            ),
            _record(
                2,
                "La fibra va muy lenta por la noche",
                "Desde hace una semana, a partir de las nueve la velocidad baja a menos de "
                "diez megas. Por el día va perfecta.",
                locale="en",
            ),
            _record(3, "Best IPA here?", "Ideas?", locale="es"),
            _record(4, "Best IPA here?", "Ideas?", locale="en"),
        ]
    )
    _run(session_factory, source)
    assert _locales(db, source.name) == {1: "en", 2: "es", 3: "es", 4: "en"}
