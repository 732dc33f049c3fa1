"""Importing a Stack Exchange data dump: what lands where, idempotency, --limit, hostile and
malformed dumps, the CLI, search and the thread page. Every dump is a small fixture written by
tests/importing/dumps.py into a temporary folder (never the real data in ../shared/data)."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import html as lxml_html
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from community.cli import app as cli_app
from community.core.db import make_session_factory
from community.core.import_models import ImportKey, ImportRun
from community.core.models import (
    Brand,
    Forum,
    Post,
    PostComment,
    Tag,
    Thread,
    ThreadStatus,
    User,
    thread_tags,
)
from community.core.settings import Settings
from community.importing.report import ImportReport
from community.importing.service import Importer, ensure_forum
from community.importing.stackexchange import DumpError, StackExchangeDump
from kb.search import SearchEngine
from tests.conftest import csrf_token, fresh
from tests.importing.dumps import (
    VOTE_UP,
    Dump,
    Ids,
    answer,
    comment,
    cut_mid_row,
    question,
    realistic_dump,
    user,
    vote,
    votes,
    with_closures,
)

SITE = "iot.stackexchange.com"
SOURCE = f"stackexchange:{SITE}"
BRAND, FORUM = "iot", "questions"
runner = CliRunner()

USERS, TAGS, QUESTIONS, ANSWERS = (
    "Users.xml",
    "Tags.xml",
    "Posts.xml (questions)",
    "Posts.xml (answers)",
)
COMMENTS, VOTES, LINKS = "Comments.xml", "Votes.xml", "PostLinks.xml"
HISTORY = "PostHistory.xml"
TAG_LEFT_OFF = "tags left off (not allowed here, or over the limit)"


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def session_factory(engine: Engine, db: Session) -> sessionmaker[Session]:
    """The importer's own sessions (it commits per batch). Asking for `db` clears the tables
    after the test."""
    return make_session_factory(engine)


def run_import(
    session_factory: sessionmaker[Session],
    directory: Path,
    *,
    limit: int | None = None,
    search: SearchEngine | None = None,
) -> ImportReport:
    """What `community import stackexchange` does, without the terminal."""
    dump = StackExchangeDump(directory, site=SITE, limit=limit)
    dump.validate()
    with session_factory() as db:
        forum = ensure_forum(db, BRAND, FORUM, forum_name=dump.site_label)
        db.commit()
        forum_id = forum.id
    return Importer(session_factory, dump, forum_id=forum_id, search=search).run()


def keys(db: Session, kind: str) -> dict[int, int]:
    """Source id -> our id, for one kind of record ("user", "question", "answer", "comment")."""
    rows = db.execute(
        select(ImportKey.external_id, ImportKey.local_id).where(
            ImportKey.source == SOURCE, ImportKey.kind == kind
        )
    )
    return {int(external): int(local) for external, local in rows}


@dataclass
class Imported:
    """The imported rows by their source ids. `posts` holds questions (their first post) and
    answers, which share one id space at the source."""

    users: dict[int, User]
    threads: dict[int, Thread]
    posts: dict[int, Post]
    comments: dict[int, PostComment]


def load(db: Session) -> Imported:
    fresh(db)
    users = {external: db.get_one(User, local) for external, local in keys(db, "user").items()}
    threads = {
        external: db.get_one(Thread, local) for external, local in keys(db, "question").items()
    }
    posts = {
        external: db.scalars(
            select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
        ).one()
        for external, thread in threads.items()
    }
    posts |= {external: db.get_one(Post, local) for external, local in keys(db, "answer").items()}
    comments = {
        external: db.get_one(PostComment, local) for external, local in keys(db, "comment").items()
    }
    return Imported(users=users, threads=threads, posts=posts, comments=comments)


def count(db: Session, table: object) -> int:
    return db.scalar(select(func.count()).select_from(table)) or 0  # type: ignore[arg-type]


COUNTED = {
    "users": User,
    "brands": Brand,
    "forums": Forum,
    "threads": Thread,
    "posts": Post,
    "post_comments": PostComment,
    "tags": Tag,
    "thread_tags": thread_tags,
    "import_keys": ImportKey,
}


def table_counts(db: Session) -> dict[str, int]:
    fresh(db)
    return {name: count(db, table) for name, table in COUNTED.items()}


def report_counts(report: ImportReport) -> dict[str, tuple[int, int, dict[str, int]]]:
    return {part.label: (part.read, part.imported, part.skipped) for part in report.parts}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def page_tree(client: TestClient, path: str) -> lxml_html.HtmlElement:
    response = client.get(path)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
    return lxml_html.fromstring(response.text)


@pytest.fixture
def dump_dir(tmp_path: Path) -> Path:
    return realistic_dump().write(tmp_path / "dump")


@pytest.fixture
def imported(
    session_factory: sessionmaker[Session], dump_dir: Path, db: Session
) -> tuple[ImportReport, Imported]:
    report = run_import(session_factory, dump_dir)
    return report, load(db)


# --- 1. a small realistic dump ---------------------------------------------------------------


def test_members_arrive_with_names_reputation_and_dates_but_no_credentials(
    imported: tuple[ImportReport, Imported],
) -> None:
    _report, rows = imported
    assert set(rows.users) == {Ids.BOT, Ids.AISHA, Ids.BO}
    aisha, bo, bot = rows.users[Ids.AISHA], rows.users[Ids.BO], rows.users[Ids.BOT]
    assert (aisha.display_name, aisha.reputation) == ("Aisha Khan", 1520)
    assert (bo.display_name, bo.reputation) == ("Bo Li", 230)
    assert (bot.display_name, bot.reputation) == ("Community", 1)
    assert aisha.created_at == at("2016-12-06T17:03:12.100")
    assert (aisha.trust_level, bo.trust_level, bot.trust_level) == (2, 1, 0), "trust by reputation"
    for member in rows.users.values():
        assert member.email is None and member.email_key is None, member.username
        assert member.password_hash is None, f"{member.username} could sign in"
    assert len({member.username_key for member in rows.users.values()}) == 3


def test_questions_keep_title_markdown_body_tags_views_and_dates(
    imported: tuple[ImportReport, Imported], db: Session
) -> None:
    _report, rows = imported
    assert set(rows.threads) == set(Ids.QUESTIONS)
    mqtt = rows.threads[Ids.Q_MQTT]
    assert mqtt.title == "How do I keep MQTT connections alive?"
    assert mqtt.created_at == at("2016-12-06T17:10:44.557")
    assert mqtt.view_count == 120
    assert mqtt.author_id == rows.users[Ids.AISHA].id
    assert mqtt.source_url == f"https://{SITE}/q/{Ids.Q_MQTT}"
    assert sorted(tag.name for tag in mqtt.tags) == ["mqtt", "networking"]
    assert rows.threads[Ids.Q_GATEWAY].author_id is None, "deleted asker: no author"
    assert sorted(tag.name for tag in rows.threads[Ids.Q_GATEWAY].tags) == [
        "raspberry-pi",
        "security",
    ], "|a|b| tags read; the name not allowed left off"

    body = rows.posts[Ids.Q_MQTT]
    assert "`mqtt`" in body.body_source, body.body_source
    assert "**keepalive**" in body.body_source, body.body_source
    assert "[MQTT FAQ](https://mqtt.org/faq)" in body.body_source, body.body_source
    assert "&lt;p&gt;" not in body.body_source and "<p>" not in body.body_source
    assert "<code>mqtt</code>" in body.body_html
    assert 'href="https://mqtt.org/faq"' in body.body_html
    assert body.created_at == mqtt.created_at
    code = rows.posts[Ids.A_MQTT_ACCEPTED]
    assert "mosquitto -v -c /etc/mosquitto/mosquitto.conf" in code.body_source
    assert "<pre>" in code.body_html and "<code" in code.body_html, code.body_html


def test_answers_acceptance_votes_and_duplicates(
    imported: tuple[ImportReport, Imported],
) -> None:
    _report, rows = imported
    threads, posts = rows.threads, rows.posts
    expected_parents = {
        Ids.A_MQTT_ACCEPTED: Ids.Q_MQTT,
        Ids.A_MQTT_BOT: Ids.Q_MQTT,
        Ids.A_HUB_ACCEPTED: Ids.Q_HUB,
        Ids.A_HUB_OTHER: Ids.Q_HUB,
        Ids.A_GATEWAY: Ids.Q_GATEWAY,
        Ids.A_GATEWAY_ORPHAN: Ids.Q_GATEWAY,
    }
    assert {a: posts[a].thread_id for a in Ids.ANSWERS} == {
        a: threads[q].id for a, q in expected_parents.items()
    }
    assert all(not posts[a].is_question for a in Ids.ANSWERS)
    assert posts[Ids.A_MQTT_BOT].author_id == rows.users[Ids.BOT].id
    assert posts[Ids.A_GATEWAY_ORPHAN].author_id is None
    assert posts[Ids.A_HUB_ACCEPTED].created_at == at("2016-12-08T11:00:00.000")

    assert threads[Ids.Q_MQTT].accepted_post_id == posts[Ids.A_MQTT_ACCEPTED].id
    assert threads[Ids.Q_HUB].accepted_post_id == posts[Ids.A_HUB_ACCEPTED].id
    assert threads[Ids.Q_GATEWAY].accepted_post_id is None
    statuses = {q: threads[q].status for q in Ids.QUESTIONS}
    assert statuses == {
        Ids.Q_MQTT: ThreadStatus.SOLVED,
        Ids.Q_HUB: ThreadStatus.SOLVED,
        Ids.Q_HUB_DUPLICATE: ThreadStatus.CLOSED,
        Ids.Q_GATEWAY: ThreadStatus.ANSWERED,
    }

    updown = {external: (post.upvotes, post.downvotes) for external, post in posts.items()}
    assert updown == {
        Ids.Q_MQTT: (2, 0),  # the favourite is not a vote
        Ids.Q_HUB: (0, 0),  # nor is the bounty
        Ids.Q_HUB_DUPLICATE: (0, 0),
        Ids.Q_GATEWAY: (0, 0),
        Ids.A_MQTT_ACCEPTED: (3, 1),  # the acceptance vote is not an upvote
        Ids.A_MQTT_BOT: (0, 1),
        Ids.A_HUB_ACCEPTED: (1, 0),
        Ids.A_HUB_OTHER: (0, 0),
        Ids.A_GATEWAY: (0, 0),
        Ids.A_GATEWAY_ORPHAN: (0, 0),
    }

    duplicate = threads[Ids.Q_HUB_DUPLICATE]
    assert duplicate.duplicate_of_id == threads[Ids.Q_HUB].id
    assert duplicate.closed_reason == "duplicate"
    assert threads[Ids.Q_GATEWAY].duplicate_of_id is None, "a related link is not a duplicate"
    assert threads[Ids.Q_GATEWAY].status != ThreadStatus.CLOSED


def test_comments_land_on_the_right_posts(imported: tuple[ImportReport, Imported]) -> None:
    _report, rows = imported
    assert set(rows.comments) == {
        Ids.C_ON_QUESTION,
        Ids.C_ON_ANSWER,
        Ids.C_DELETED_USER,
        Ids.C_ON_GATEWAY,
    }, "the comment on a deleted post is left out"
    on_question = rows.comments[Ids.C_ON_QUESTION]
    assert on_question.post_id == rows.posts[Ids.Q_MQTT].id
    assert on_question.author_id == rows.users[Ids.BO].id
    assert on_question.score == 2
    assert "Which broker do you use?" in on_question.body_html
    assert on_question.created_at == at("2016-12-06T17:41:42.283")
    assert rows.comments[Ids.C_ON_ANSWER].post_id == rows.posts[Ids.A_MQTT_ACCEPTED].id
    assert rows.comments[Ids.C_ON_GATEWAY].post_id == rows.posts[Ids.A_GATEWAY].id
    gone = rows.comments[Ids.C_DELETED_USER]
    assert gone.post_id == rows.posts[Ids.A_MQTT_ACCEPTED].id
    assert gone.author_id is None
    assert gone.author_name == "Gone Person"


def test_counters_are_recounted(imported: tuple[ImportReport, Imported], db: Session) -> None:
    _report, rows = imported
    replies = {q: rows.threads[q].reply_count for q in Ids.QUESTIONS}
    assert replies == {Ids.Q_MQTT: 2, Ids.Q_HUB: 2, Ids.Q_HUB_DUPLICATE: 0, Ids.Q_GATEWAY: 2}
    forum = db.scalars(select(Forum).where(Forum.slug == FORUM)).one()
    assert (forum.thread_count, forum.post_count) == (4, 10), "4 questions + 6 answers"
    assert forum.last_activity_at == at("2017-01-05T00:18:00.000")
    tag_counts = dict(db.execute(select(Tag.name, Tag.thread_count)).all())
    assert tag_counts == {
        "mqtt": 1,
        "networking": 1,
        "zigbee": 2,
        "alexa": 2,
        "security": 1,
        "raspberry-pi": 1,
    }


def test_report_counts_rows_read_imported_and_skipped_per_part(
    imported: tuple[ImportReport, Imported], db: Session
) -> None:
    report, _rows = imported
    assert report.source == SOURCE
    assert report.rescored == 4, "every new thread is scored"
    assert report.indexed == 0, "no search engine given"
    expected = {
        USERS: (3, 3, {}),
        TAGS: (6, 5, {"tag name not allowed here": 1}),
        # 4 question rows, all imported; the tag left off one of them is a note, not a row.
        QUESTIONS: (4, 4, {}),
        ANSWERS: (7, 6, {"tag wikis and other post types (not Q&A)": 1}),
        COMMENTS: (5, 4, {"post not imported": 1}),
        VOTES: (
            12,
            8,
            {
                "favourites (ignored)": 1,
                "acceptance votes (taken from the question instead)": 1,
                "bounties (ignored)": 1,
                "post not imported (or deleted at the source)": 1,
            },
        ),
        LINKS: (2, 1, {"related links (not duplicates)": 1}),
        HISTORY: (0, 0, {}),
    }
    fresh(db)
    run = db.get_one(ImportRun, report.run_id)
    assert run.finished_at is not None
    assert run.source == SOURCE
    assert [part["label"] for part in run.summary["parts"]] == list(expected)
    assert report_counts(report) == expected
    assert report.part(QUESTIONS).notes == {TAG_LEFT_OFF: 1}
    assert run.summary["parts"][2]["notes"] == {TAG_LEFT_OFF: 1}


def test_imported_members_cannot_sign_in(
    client: TestClient, session_factory: sessionmaker[Session], dump_dir: Path, db: Session
) -> None:
    run_import(session_factory, dump_dir)
    fresh(db)
    aisha = db.get_one(User, keys(db, "user")[Ids.AISHA])
    for password in ("", "Aisha Khan", "tall-orange-kettle-41"):
        response = client.post(
            "/login",
            data={"login": aisha.username, "password": password, "csrf_token": csrf_token(client)},
            follow_redirects=False,
        )
        # 401: wrong credentials; 422: the form refuses an empty password. Never 303 (signed in).
        assert response.status_code in (401, 422), (password, response.status_code)
    assert aisha.password_hash is None


# --- 2. idempotency and newer dumps ----------------------------------------------------------


def _thread_state(db: Session) -> dict[int, tuple[object, ...]]:
    fresh(db)
    return {
        thread.id: (
            thread.status,
            thread.accepted_post_id,
            thread.duplicate_of_id,
            thread.reply_count,
            thread.view_count,
            thread.last_activity_at,
        )
        for thread in db.scalars(select(Thread))
    }


def _votes(db: Session) -> dict[int, tuple[int, int]]:
    fresh(db)
    return {post.id: (post.upvotes, post.downvotes) for post in db.scalars(select(Post))}


def test_second_run_of_the_same_dump_changes_nothing(
    session_factory: sessionmaker[Session], dump_dir: Path, db: Session
) -> None:
    run_import(session_factory, dump_dir)
    before = table_counts(db)
    threads_before, votes_before = _thread_state(db), _votes(db)
    forum_before = db.scalars(select(Forum.thread_count, Forum.post_count)).all()

    report = run_import(session_factory, dump_dir)

    assert table_counts(db) == before
    assert _thread_state(db) == threads_before
    assert _votes(db) == votes_before
    assert db.scalars(select(Forum.thread_count, Forum.post_count)).all() == forum_before
    assert count(db, ImportRun) == 2, "each run is recorded"
    imported = {part.label: part.imported for part in report.parts}
    assert imported == dict.fromkeys(imported, 0), imported
    for label, how_many in ((USERS, 3), (QUESTIONS, 4), (ANSWERS, 6), (COMMENTS, 4)):
        assert report.part(label).skipped.get("already imported") == how_many, (
            label,
            report.part(label).skipped,
        )
    assert report.part(TAGS).skipped.get("already present") == 5
    assert report.part(VOTES).skipped.get("post imported by an earlier run (kept)") == 8
    assert report.rescored == 0, "no thread touched"


def test_newer_dump_adds_only_what_is_new_and_keeps_earlier_vote_totals(
    session_factory: sessionmaker[Session], tmp_path: Path, db: Session
) -> None:
    dump = realistic_dump()
    directory = dump.write(tmp_path / "dump")
    run_import(session_factory, directory)
    before = table_counts(db)
    first = load(db)
    first_votes = {external: (p.upvotes, p.downvotes) for external, p in first.posts.items()}

    newer = dump.copy()
    newer.posts += [
        question(
            20,
            title="Zigbee mesh drops my bulbs at night",
            body="<p>Every night the bulbs go offline.</p>",
            tags="<zigbee>",
            owner=Ids.AISHA,
            created="2017-02-01T10:00:00.000",
            views=7,
            accepted=21,
        ),
        answer(
            21, parent=20, body="<p>Add a mains-powered router.</p>", owner=Ids.BO,
            created="2017-02-01T12:00:00.000",
        ),
    ]  # fmt: skip
    # A late answer to a question the first run brought in.
    newer.posts.append(
        answer(
            22, parent=Ids.Q_GATEWAY, body="<p>Put it behind a firewall.</p>", owner=Ids.BO,
            created="2017-02-03T09:30:00.000",
        )
    )  # fmt: skip
    newer.comments.append(
        comment(6, post=21, text="Worked for me.", created="2017-02-02T10:00:00.000", user=2)
    )
    vote_id = newer.next_vote_id()
    # Two more upvotes for an answer imported by the first run, one for the new answer.
    newer.votes += [*votes(vote_id, post=Ids.A_MQTT_ACCEPTED, kind=VOTE_UP, count=2)]
    newer.votes.append(vote(vote_id + 2, post=21, kind=VOTE_UP))
    newer.write(directory)

    report = run_import(session_factory, directory)

    after = table_counts(db)
    added = {name: after[name] - before[name] for name in after}
    assert added == {
        "users": 0,
        "brands": 0,
        "forums": 0,
        "threads": 1,
        "posts": 3,
        "post_comments": 1,
        "tags": 0,
        "thread_tags": 1,
        "import_keys": 4,
    }
    second = load(db)
    new_thread, new_answer = second.threads[20], second.posts[21]
    assert new_thread.title == "Zigbee mesh drops my bulbs at night"
    assert new_answer.thread_id == new_thread.id
    assert new_thread.accepted_post_id == new_answer.id
    assert new_thread.status == ThreadStatus.SOLVED
    assert second.comments[6].post_id == new_answer.id
    assert (new_answer.upvotes, new_answer.downvotes) == (1, 0)
    kept = {
        external: (p.upvotes, p.downvotes)
        for external, p in second.posts.items()
        if external not in (20, 21, 22)
    }
    assert kept == first_votes, "vote totals of posts from the first run are not overwritten"
    assert report.part(VOTES).imported == 1
    assert report.part(VOTES).skipped["post imported by an earlier run (kept)"] == 10
    gateway = second.threads[Ids.Q_GATEWAY]
    assert second.posts[22].thread_id == gateway.id
    assert gateway.reply_count == 3
    assert gateway.last_activity_at == at("2017-02-03T09:30:00.000"), "activity moves on"
    forum = db.scalars(select(Forum)).one()
    assert (forum.thread_count, forum.post_count) == (5, 13)
    assert forum.last_activity_at == at("2017-02-03T09:30:00.000")
    zigbee = db.scalars(select(Tag).where(Tag.name == "zigbee")).one()
    assert zigbee.thread_count == 3
    assert report.rescored == 2, "the new thread and the one with a new answer are rescored"


# --- 3. --limit ------------------------------------------------------------------------------


def test_limit_keeps_the_first_questions_and_what_hangs_off_them(
    session_factory: sessionmaker[Session], dump_dir: Path, db: Session
) -> None:
    report = run_import(session_factory, dump_dir, limit=2)
    rows = load(db)
    assert set(rows.threads) == {Ids.Q_MQTT, Ids.Q_HUB}
    assert set(rows.posts) - set(rows.threads) == {
        Ids.A_MQTT_ACCEPTED,
        Ids.A_MQTT_BOT,
        Ids.A_HUB_ACCEPTED,
        Ids.A_HUB_OTHER,
    }
    assert set(rows.comments) == {Ids.C_ON_QUESTION, Ids.C_ON_ANSWER, Ids.C_DELETED_USER}
    assert report.part(QUESTIONS).skipped.get("beyond --limit") == 2
    assert report.part(ANSWERS).skipped.get("question not imported") == 2
    assert report.part(COMMENTS).skipped.get("post not imported") == 2
    assert report.part(LINKS).skipped.get("question not imported (or deleted at the source)") == 1
    assert count(db, Thread) == 2 and count(db, Post) == 6


# --- 4. hostile content ----------------------------------------------------------------------

HOSTILE_BODY = (
    "<p>Hello</p><script>alert(1)</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">x</a><iframe src="https://evil.example/frame"></iframe>'
    '<p style="color:red" onclick="alert(3)">styled</p>'
    "<svg onload=alert(6)><circle /></svg>"
)
HOSTILE_COMMENT = (
    "<script>alert(2)</script> and <img src=x onerror=alert(4)> [here](javascript:alert(5))"
)
MARKUP_NAME = "<b>Bold</b> Hacker"


def _assert_inert(fragment: str, where: str) -> None:
    """No element or attribute that can run script, frame another site or restyle the page.
    Escaped text (`&lt;script&gt;`) is fine: it shows as text."""
    lowered = fragment.lower()
    for needle in ("<script", "<iframe", "<svg", "<object", "<embed", "<style", " style="):
        assert needle not in lowered, f"{where} keeps {needle!r}: {fragment}"
    _assert_no_active_attributes(
        lxml_html.fragment_fromstring(fragment, create_parent="div"), where
    )


def _assert_no_active_attributes(tree: lxml_html.HtmlElement, where: str) -> None:
    for node in tree.iter():
        for name, value in node.attrib.items():
            found = f"{where}: <{node.tag!r} {name}={value!r}>"
            assert not name.lower().startswith("on"), found
            assert "javascript:" not in value.replace(" ", "").lower(), found


def hostile_dump() -> Dump:
    dump = Dump()
    dump.users = [user(7, MARKUP_NAME, 50, "2017-01-01T00:00:00.000")]
    dump.posts = [
        question(
            30,
            # DEL, a right-to-left override, NEL and a tab: control and format characters.
            title="Reset\x7f the\u202e hub\x85\tnow\u200b",
            body=HOSTILE_BODY,
            tags="<security>",
            owner=7,
            created="2017-01-02T00:00:00.000",
        ),
        answer(31, parent=30, body=HOSTILE_BODY, owner=7, created="2017-01-03T00:00:00.000"),
    ]
    dump.comments = [
        comment(40, post=30, text=HOSTILE_COMMENT, created="2017-01-04T00:00:00.000", user=7)
    ]
    return dump


def test_hostile_markup_is_neutralised_on_the_way_in_and_on_the_page(
    client: TestClient, session_factory: sessionmaker[Session], tmp_path: Path, db: Session
) -> None:
    report = run_import(session_factory, hostile_dump().write(tmp_path / "hostile"))
    assert report.part(QUESTIONS).imported == 1
    rows = load(db)
    thread = rows.threads[30]
    assert thread.title == "Reset the hub now", repr(thread.title)
    assert rows.users[7].display_name == MARKUP_NAME  # stored as text, escaped when shown
    for external in (30, 31):
        _assert_inert(rows.posts[external].body_html, f"post {external} body_html")
        assert "Hello" in rows.posts[external].body_html
    _assert_inert(rows.comments[40].body_html, "comment body_html")

    response = client.get(f"/t/{thread.id}")
    assert response.status_code == 200
    page = response.text
    assert "&lt;b&gt;Bold&lt;/b&gt; Hacker" in page, "display name escaped"
    assert MARKUP_NAME not in page
    tree = lxml_html.fromstring(page)
    scripts = " ".join(script.text_content() for script in tree.xpath("//script"))
    assert "alert(" not in scripts, "no injected script runs"
    # The only SVG is the site's own drawn avatars (initials, escaped: MARKUP_NAME is absent).
    plugins = "//iframe | //svg[not(contains(@class, 'avatar-img'))] | //object | //embed"
    assert not tree.xpath(plugins), "no frame or plugin"
    _assert_no_active_attributes(tree, f"/t/{thread.id}")
    shown = tree.xpath("//*[contains(@class, 'post-body') or contains(@class, 'comment-body')]")
    assert len(shown) == 3, "question, answer and comment are shown"
    assert not [node for part in shown for node in part.iter() if node.get("style")]
    comment_text = tree.get_element_by_id(f"comment-{rows.comments[40].id}").text_content()
    assert "<script>alert(2)</script>" in comment_text, "the comment's markup shows as text"


def _laughs_doctype(root: str) -> str:
    entities = ['  <!ENTITY lol0 "lol">'] + [
        f'  <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return f"<!DOCTYPE {root} [\n" + "\n".join(entities) + "\n]>"


def test_entity_expansion_is_refused_quickly_and_cheaply(tmp_path: Path) -> None:
    """A "billion laughs" in one file (3 GB if expanded) stops validation with a DumpError
    naming the file; it must not take time or memory."""
    dump = realistic_dump()
    dump.doctypes["Comments.xml"] = _laughs_doctype("comments")
    dump.comments.append(
        comment(77, post=Ids.Q_MQTT, text="&lol9;", created="2017-01-01T00:00:00.000", user=2)
    )
    directory = dump.write(tmp_path / "laughs")
    # `escape` wrote "&amp;lol9;"; make it a real entity reference.
    comments = directory / "Comments.xml"
    comments.write_bytes(comments.read_bytes().replace(b"&amp;lol9;", b"&lol9;"))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    with pytest.raises(DumpError) as caught:
        StackExchangeDump(directory, site=SITE).validate()
    elapsed = time.perf_counter() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert str(caught.value).startswith("Comments.xml: line "), str(caught.value)
    assert "entit" in str(caught.value).lower(), str(caught.value)
    assert elapsed < 5, f"validation took {elapsed:.1f} s"
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB"


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    dump = realistic_dump()
    dump.doctypes["Users.xml"] = f'<!DOCTYPE users [\n  <!ENTITY xxe SYSTEM "file://{secret}">\n]>'
    dump.users[1]["DisplayName"] = "XXE-PLACEHOLDER"
    directory = dump.write(tmp_path / "xxe")
    users = directory / "Users.xml"
    users.write_bytes(users.read_bytes().replace(b"XXE-PLACEHOLDER", b"&xxe;"))
    with pytest.raises(DumpError) as caught:
        StackExchangeDump(directory).validate()
    message = str(caught.value)
    # Line 7: the declaration, 3 lines of DOCTYPE, <users>, the bot's row, then Aisha's.
    assert message.startswith("Users.xml: line 7:"), message
    assert "external entity" in message, message
    assert "TOP-SECRET" not in message


# --- 5. malformed files ----------------------------------------------------------------------


def test_truncated_posts_file_names_the_file_and_line(tmp_path: Path) -> None:
    directory = realistic_dump().write(tmp_path / "cut")
    cut_mid_row(directory / "Posts.xml", line=5)
    with pytest.raises(DumpError) as caught:
        StackExchangeDump(directory).validate()
    message = str(caught.value)
    assert message.startswith("Posts.xml: line 5:"), message


def test_missing_votes_file_is_named(tmp_path: Path) -> None:
    directory = realistic_dump().write(tmp_path / "partial", leave_out={"Votes.xml"})
    with pytest.raises(DumpError) as caught:
        StackExchangeDump(directory).validate()
    assert str(caught.value).startswith("Votes.xml: missing"), str(caught.value)


def test_unreadable_rows_are_skipped_and_counted(
    session_factory: sessionmaker[Session], tmp_path: Path, db: Session
) -> None:
    dump = realistic_dump()
    broken_user = user(50, "No Date", 10, "2017-01-01T00:00:00.000")
    broken_user["CreationDate"] = "last tuesday"
    dump.users.append(broken_user)
    dump.posts.append(
        question(
            51, title="A question with a broken date", body="<p>x</p>", tags="<mqtt>",
            owner=Ids.AISHA, created="2016-13-45T99:00:00.000",
        )
    )  # fmt: skip
    dump.posts.append(
        answer(52, parent=Ids.Q_MQTT, body="<p>y</p>", owner=Ids.BO, created="2017-01-01")
    )
    dump.posts[-1]["ParentId"] = "one"
    bad_comment = comment(53, post=Ids.Q_MQTT, text="z", created="2017-01-01T00:00:00.000")
    bad_comment["Id"] = "x53"
    dump.comments.append(bad_comment)
    bad_vote = vote(dump.next_vote_id(), post=Ids.Q_MQTT, kind=VOTE_UP)
    bad_vote["PostId"] = "?"
    dump.votes.append(bad_vote)

    report = run_import(session_factory, dump.write(tmp_path / "broken"))

    assert report.part(USERS).skipped == {"unreadable row (bad CreationDate)": 1}
    assert report.part(QUESTIONS).skipped.get("unreadable row (bad CreationDate)") == 1
    assert report.part(ANSWERS).skipped.get("unreadable row (bad ParentId)") == 1
    assert report.part(COMMENTS).skipped.get("unreadable row (bad Id)") == 1
    assert report.part(VOTES).skipped.get("unreadable row (bad PostId)") == 1
    rows = load(db)
    assert set(rows.threads) == set(Ids.QUESTIONS), "the rest is imported"
    assert len(rows.users) == 3 and len(rows.posts) == 10 and len(rows.comments) == 4
    assert (rows.posts[Ids.Q_MQTT].upvotes, rows.posts[Ids.Q_MQTT].downvotes) == (2, 0)


# --- 6. the command line ---------------------------------------------------------------------


def _import_command(directory: Path, *extra: str) -> list[str]:
    return ["import", "stackexchange", str(directory), "--no-index", *extra]


def _nothing_written(db: Session) -> dict[str, int]:
    fresh(db)
    counts = {name: count(db, table) for name, table in COUNTED.items()}
    counts["import_runs"] = count(db, ImportRun)
    return {name: value for name, value in counts.items() if value}


def test_cli_imports_creates_brand_and_forum_and_prints_a_summary(
    cli_env: None, dump_dir: Path, db: Session
) -> None:
    result = runner.invoke(
        cli_app, _import_command(dump_dir, "--brand", "iot-help", "--forum", "qa", "--site", SITE)
    )
    assert result.exit_code == 0, result.output
    for label in (
        "Users.xml",
        "Tags.xml",
        "Posts.xml",
        "Comments.xml",
        "Votes.xml",
        "PostLinks.xml",
    ):
        assert label in result.output, f"{label} missing from the summary:\n{result.output}"
    summary = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:4]]
        for line in result.output.splitlines()
        if line.count("│") >= 4 and line.split("│")[1].strip()
    }
    assert summary.get("Users.xml") == ["3", "3"], summary
    assert summary.get("Comments.xml") == ["5", "4"], summary
    assert summary.get("Votes.xml") == ["12", "8"], summary
    assert "Traceback" not in result.output
    fresh(db)
    brand = db.scalars(select(Brand)).one()
    forum = db.scalars(select(Forum)).one()
    assert (brand.slug, forum.slug, forum.brand_id) == ("iot-help", "qa", brand.id)
    assert forum.name == SITE
    assert (count(db, Thread), count(db, Post), count(db, PostComment)) == (4, 10, 4)

    again = runner.invoke(
        cli_app, _import_command(dump_dir, "--brand", "iot-help", "--forum", "qa", "--site", SITE)
    )
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output
    fresh(db)
    assert (count(db, Brand), count(db, Forum), count(db, Thread), count(db, Post)) == (1, 1, 4, 10)


def test_cli_truncated_dump_fails_in_one_line_and_writes_nothing(
    cli_env: None, dump_dir: Path, db: Session
) -> None:
    cut_mid_row(dump_dir / "Posts.xml", line=6)
    result = runner.invoke(cli_app, _import_command(dump_dir, "--brand", "b", "--forum", "f"))
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("error: Posts.xml: line 6:"), errors[0]
    assert "Traceback" not in result.output
    assert _nothing_written(db) == {}


def test_cli_missing_votes_file(cli_env: None, tmp_path: Path, db: Session) -> None:
    directory = realistic_dump().write(tmp_path / "partial", leave_out={"Votes.xml"})
    result = runner.invoke(cli_app, _import_command(directory, "--brand", "b", "--forum", "f"))
    assert result.exit_code == 1, result.output
    assert "error: Votes.xml: missing" in result.output
    assert _nothing_written(db) == {}


def test_cli_rejects_a_bad_slug(cli_env: None, dump_dir: Path, db: Session) -> None:
    result = runner.invoke(
        cli_app, _import_command(dump_dir, "--brand", "Bad Slug", "--forum", "f")
    )
    assert result.exit_code == 1, result.output
    assert "error: 'Bad Slug' is not a valid slug" in result.output, result.output
    assert "Traceback" not in result.output
    assert _nothing_written(db) == {}


# --- 7. search -------------------------------------------------------------------------------


def test_imported_threads_are_searchable_with_a_typo(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    dump_dir: Path,
    db: Session,
) -> None:
    report = run_import(session_factory, dump_dir, search=SearchEngine(settings))
    assert report.indexed == 4
    rows = load(db)
    response = client.get(
        f"/api/v1/brands/{BRAND}/search", params={"q": "mqtt conections", "scope": "community"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["degraded"], "Meilisearch answered (not the database fallback)"
    urls = [hit["url"] for hit in body["hits"]]
    assert urls and urls[0] == f"/t/{rows.threads[Ids.Q_MQTT].id}", urls
    hub = client.get(
        f"/api/v1/brands/{BRAND}/search", params={"q": "zigbe hub", "scope": "community"}
    ).json()
    assert f"/t/{rows.threads[Ids.Q_HUB].id}" in [hit["url"] for hit in hub["hits"]], hub


# --- 8. the thread page ----------------------------------------------------------------------


def test_thread_page_shows_comments_attribution_acceptance_and_duplicate_note(
    client: TestClient, imported: tuple[ImportReport, Imported]
) -> None:
    _report, rows = imported
    thread = rows.threads[Ids.Q_MQTT]
    tree = page_tree(client, f"/t/{thread.id}")

    def comments_under(post_external: int) -> list[str]:
        section = tree.get_element_by_id(f"post-{rows.posts[post_external].id}")
        return [li.get("id") for li in section.xpath(".//li[starts-with(@id, 'comment-')]")]

    assert comments_under(Ids.Q_MQTT) == [f"comment-{rows.comments[Ids.C_ON_QUESTION].id}"]
    assert comments_under(Ids.A_MQTT_ACCEPTED) == [
        f"comment-{rows.comments[Ids.C_ON_ANSWER].id}",
        f"comment-{rows.comments[Ids.C_DELETED_USER].id}",
    ]
    assert comments_under(Ids.A_MQTT_BOT) == []
    gone = tree.get_element_by_id(f"comment-{rows.comments[Ids.C_DELETED_USER].id}")
    assert "Gone Person" in gone.text_content()
    assert "I had the same problem with a Sonoff." in gone.text_content()
    named = tree.get_element_by_id(f"comment-{rows.comments[Ids.C_ON_QUESTION].id}")
    assert "Bo Li" in named.text_content()

    links = tree.xpath("//*[contains(@class, 'attribution')]//a/@href")
    assert links == [f"https://{SITE}/q/{Ids.Q_MQTT}"], links
    assert SITE in tree.xpath("string(//*[contains(@class, 'attribution')])")

    accepted = tree.get_element_by_id(f"post-{rows.posts[Ids.A_MQTT_ACCEPTED].id}")
    assert "accepted" in accepted.get("class", "").split()
    assert "Accepted answer" in accepted.text_content()
    other = tree.get_element_by_id(f"post-{rows.posts[Ids.A_MQTT_BOT].id}")
    assert "accepted" not in other.get("class", "").split()

    duplicate = page_tree(client, f"/t/{rows.threads[Ids.Q_HUB_DUPLICATE].id}")
    notes = duplicate.xpath("//*[contains(@class, 'closed-note')]")
    assert len(notes) == 1
    assert "duplicate" in notes[0].text_content().lower(), notes[0].text_content()
    assert notes[0].xpath(".//a/@href") == [f"/t/{rows.threads[Ids.Q_HUB].id}"]

    orphan = page_tree(client, f"/t/{rows.threads[Ids.Q_GATEWAY].id}")
    assert "a former member" in orphan.text_content()

    # The authors' names link to their (imported) profiles, the community bot's too.
    for external in (Ids.A_MQTT_ACCEPTED, Ids.A_MQTT_BOT):
        section = tree.get_element_by_id(f"post-{rows.posts[external].id}")
        profile = section.xpath(".//p[contains(@class, 'meta')]/a/@href")[0]
        response = client.get(profile)
        assert response.status_code == 200, (profile, response.status_code)


def test_sites_of_one_network_share_names_and_ids_without_clashing(
    session_factory: sessionmaker[Session], dump_dir: Path, db: Session
) -> None:
    """Every Stack Exchange site has "Community" (id -1) and often the same people at the same
    ids: importing three sites gives each its own accounts, with distinct usernames."""
    usernames: set[str] = set()
    for number, site in enumerate(("one.example.com", "two.example.com", "three.example.com")):
        dump = StackExchangeDump(dump_dir, site=site)
        dump.validate()
        with session_factory() as setup:
            forum = ensure_forum(setup, BRAND, f"site-{number}", forum_name=site)
            setup.commit()
            forum_id = forum.id
        report = Importer(session_factory, dump, forum_id=forum_id, search=None).run()
        assert report.part(USERS).imported == 3, site
        fresh(db)
        usernames = set(db.scalars(select(User.username)))
    assert len(usernames) == 9
    assert {"Community-1", "Community-1-2", "Community-1-3"} <= usernames


# --- 9. closures (PostHistory.xml) ------------------------------------------------------------

CLOSED_AT_THE_SOURCE = {
    Ids.Q_OFF_TOPIC: (ThreadStatus.CLOSED, "off_topic"),
    Ids.Q_REOPENED: (ThreadStatus.ANSWERED, None),
    Ids.Q_TOO_BROAD: (ThreadStatus.CLOSED, "too_broad"),
    Ids.Q_UNLINKED_DUPLICATE: (ThreadStatus.CLOSED, "duplicate"),
    Ids.Q_OLD_REASON: (ThreadStatus.CLOSED, "too_localized"),
    Ids.Q_HUB_DUPLICATE: (ThreadStatus.CLOSED, "duplicate"),
    Ids.Q_HUB: (ThreadStatus.SOLVED, None),
}


def _closures(rows: Imported) -> dict[int, tuple[ThreadStatus, str | None]]:
    return {
        q: (rows.threads[q].status, rows.threads[q].closed_reason) for q in CLOSED_AT_THE_SOURCE
    }


@pytest.fixture
def closures_dir(tmp_path: Path) -> Path:
    return with_closures(realistic_dump()).write(tmp_path / "closures")


def test_questions_closed_at_the_source_arrive_closed_with_their_reason(
    session_factory: sessionmaker[Session], closures_dir: Path, db: Session
) -> None:
    report = run_import(session_factory, closures_dir)
    rows = load(db)
    assert _closures(rows) == CLOSED_AT_THE_SOURCE
    assert rows.threads[Ids.Q_UNLINKED_DUPLICATE].duplicate_of_id is None, "no link, no original"
    assert rows.threads[Ids.Q_HUB_DUPLICATE].duplicate_of_id == rows.threads[Ids.Q_HUB].id
    # One row per question: its last close or reopen; the earlier ones are counted as skipped.
    assert report_counts(report)[HISTORY] == (
        10,
        4,
        {
            "earlier close or reopen (the last one decides)": 3,
            "reopened at the source (open)": 1,
            "closed as a duplicate of a linked question (by PostLinks.xml)": 1,
            "question not imported (or deleted at the source)": 1,
        },
    )


def test_a_second_run_keeps_closures_and_a_moderators_reopen(
    session_factory: sessionmaker[Session], closures_dir: Path, db: Session
) -> None:
    run_import(session_factory, closures_dir)
    threads_before = _thread_state(db)
    report = run_import(session_factory, closures_dir)
    assert _thread_state(db) == threads_before
    assert report.part(HISTORY).imported == 0
    assert report.part(HISTORY).skipped["question imported by an earlier run (kept)"] == 6

    # A moderator reopens an imported closed thread: the next import must not close it again.
    off_topic = load(db).threads[Ids.Q_OFF_TOPIC]
    off_topic.status, off_topic.closed_reason = ThreadStatus.OPEN, None
    db.commit()
    run_import(session_factory, closures_dir)
    again = load(db).threads[Ids.Q_OFF_TOPIC]
    assert (again.status, again.closed_reason) == (ThreadStatus.OPEN, None)


def test_a_dump_without_post_history_imports_as_before(
    session_factory: sessionmaker[Session], tmp_path: Path, db: Session
) -> None:
    directory = with_closures(realistic_dump()).write(tmp_path / "old", leave_out={HISTORY})
    report = run_import(session_factory, directory)
    rows = load(db)
    assert report_counts(report)[HISTORY] == (0, 0, {})
    assert rows.threads[Ids.Q_OFF_TOPIC].status == ThreadStatus.OPEN
    assert rows.threads[Ids.Q_TOO_BROAD].status == ThreadStatus.ANSWERED
    assert rows.threads[Ids.Q_HUB_DUPLICATE].closed_reason == "duplicate", "PostLinks still close"


def test_a_broken_post_history_file_is_named(tmp_path: Path) -> None:
    directory = with_closures(realistic_dump()).write(tmp_path / "cut")
    cut_mid_row(directory / HISTORY, line=6)
    with pytest.raises(DumpError) as caught:
        StackExchangeDump(directory).validate()
    assert str(caught.value).startswith("PostHistory.xml: line 6:"), str(caught.value)


def test_the_thread_page_says_why_an_imported_thread_was_closed(
    client: TestClient, session_factory: sessionmaker[Session], closures_dir: Path, db: Session
) -> None:
    run_import(session_factory, closures_dir)
    rows = load(db)
    expected = {
        Ids.Q_OFF_TOPIC: "Closed as off-topic",
        Ids.Q_TOO_BROAD: "Closed as too broad",
        Ids.Q_OLD_REASON: "Closed as too localized",
        Ids.Q_UNLINKED_DUPLICATE: "Closed as a duplicate",
    }
    for question_id, note in expected.items():
        tree = page_tree(client, f"/t/{rows.threads[question_id].id}")
        notes = tree.xpath("//*[contains(@class, 'closed-note')]")
        assert [n.text_content().strip() for n in notes] == [note], question_id
        assert notes[0].xpath(".//a") == [], "no original to link to"
    reopened = page_tree(client, f"/t/{rows.threads[Ids.Q_REOPENED].id}")
    assert reopened.xpath("//*[contains(@class, 'closed-note')]") == []
    spanish = client.get(
        f"/t/{rows.threads[Ids.Q_TOO_BROAD].id}", headers={"Accept-Language": "es"}
    )
    assert "Cerrado por ser demasiado amplio" in spanish.text


def test_questions_closed_at_the_source_are_not_suggested(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    closures_dir: Path,
    db: Session,
) -> None:
    run_import(session_factory, closures_dir, search=SearchEngine(settings))
    rows = load(db)

    def suggested(title: str) -> str:
        page = client.get(
            f"/b/{BRAND}/kb/suggest", params={"title": title}, headers={"HX-Request": "true"}
        )
        assert page.status_code == 200
        return page.text

    # Both have an answer; only the one reopened at the source may be suggested.
    assert f'href="/t/{rows.threads[Ids.Q_REOPENED].id}"' in suggested(
        "pairing zigbee sensor with two hubs"
    )
    assert f'href="/t/{rows.threads[Ids.Q_TOO_BROAD].id}"' not in suggested(
        "everything about home automation"
    )
