"""Saved replies in the service: admins' changes checked field by field and audited, the
placeholders (including a missing author and format-string tricks), where {kb_link} points,
the answer-box search order, and a use counted only when the answer is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.auth import Passwords
from community.core.errors import FormErrors, NotFound, PermissionDenied
from community.core.models import Brand, Forum, Role, User
from community.demo import seed_demo
from crowdservice import agent
from crowdservice.saved_replies import service, use
from crowdservice.saved_replies.models import SavedReply, SuggestedAction
from crowdservice.saved_replies.placeholders import fill, unknown_placeholders
from kb.models import Article, ArticleStatus
from tests.conftest import QA
from tests.crowdservice.helpers import escalated, reloaded

UserFactory = Callable[..., User]


def _fields(**changes: object) -> service.ReplyFields:
    base = service.ReplyFields(
        title="Ask for the order number",
        locale="en",
        body="Hi {author_name}, could you tell us your order number?",
        action="ask_details",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _article(
    db: Session, brand_id: int, title: str = "Resetting your router", **kw: object
) -> Article:
    article = Article(
        brand_id=brand_id,
        title=title,
        body_source="Steps.",
        body_html="<p>Steps.</p>",
        status=kw.pop("status", ArticleStatus.PUBLISHED),
        **kw,
    )
    db.add(article)
    db.commit()
    return article


def _other_brand(db: Session) -> Brand:
    brand = Brand(slug="other", name="Other", description="", theme={}, default_locale="en")
    db.add(brand)
    db.commit()
    return brand


# --- admin changes ---------------------------------------------------------------------------


def test_an_admin_creates_edits_archives_and_restores_a_reply_with_audit(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    brand = forum.brand
    reply = service.create_reply(db, admin, brand, _fields(title="  Order number  "), ip="10.0.0.1")
    db.commit()
    assert (reply.title, reply.locale, reply.action) == (
        "Order number",
        "en",
        SuggestedAction.ASK_DETAILS,
    )
    assert reply.usage_count == 0 and reply.created_by_id == admin.id

    service.update_reply(db, admin, reply, _fields(title="Order number, please", action="answer"))
    service.set_archived(db, admin, reply, True)
    service.set_archived(db, admin, reply, True)  # already archived: no second audit row
    service.set_archived(db, admin, reply, False)
    db.commit()
    stored = reloaded(db, reply)
    assert stored.title == "Order number, please" and stored.action == SuggestedAction.ANSWER
    assert stored.archived_at is None
    actions = list(
        db.scalars(
            select(AuditLog.action)
            .where(AuditLog.target_type == "saved_reply", AuditLog.target_id == str(reply.id))
            .order_by(AuditLog.id)
        )
    )
    assert actions == [
        "saved_reply.created",
        "saved_reply.updated",
        "saved_reply.archived",
        "saved_reply.unarchived",
    ]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_only_admins_manage_replies(
    db: Session, forum: Forum, make_user: UserFactory, role: Role
) -> None:
    someone = make_user("someone", role=role)
    with pytest.raises(PermissionDenied):
        service.create_reply(db, someone, forum.brand, _fields())
    db.rollback()
    assert db.scalar(select(SavedReply.id)) is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"body": ""}, "body"),
        ({"body": "x" * 30_001}, "body"),
        ({"body": "Hi {customer_name}"}, "body"),
        ({"locale": "fr"}, "locale"),
        ({"locale": ""}, "locale"),
        ({"action": "delete_everything"}, "action"),
        ({"kb_article_id": 99_999_999}, "kb_article_id"),
        ({"kb_article_id": 2**63 + 5}, "kb_article_id"),
    ],
)
def test_each_field_is_checked_and_nothing_changes(
    db: Session, forum: Forum, make_user: UserFactory, changes: dict[str, object], field: str
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    with pytest.raises(FormErrors) as caught:
        service.create_reply(db, admin, forum.brand, _fields(**changes))
    assert field in caught.value.errors
    db.rollback()
    assert db.scalar(select(SavedReply.id)) is None


def test_an_unknown_placeholder_is_named_in_the_error(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    with pytest.raises(FormErrors) as caught:
        service.create_reply(db, admin, forum.brand, _fields(body="Hi {custmer}, see {kb_link}"))
    assert "{custmer}" in caught.value.errors["body"]
    assert "{kb_link}" not in caught.value.errors["body"].split(".")[0]


def test_the_article_must_be_a_live_one_of_the_same_brand(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    elsewhere = _article(db, _other_brand(db).id, "Elsewhere")
    draft = _article(db, forum.brand_id, "Draft", status=ArticleStatus.DRAFT)
    obsolete = _article(db, forum.brand_id, "Old", obsolete=True)
    for article in (elsewhere, draft, obsolete):
        with pytest.raises(FormErrors) as caught:
            service.create_reply(db, admin, forum.brand, _fields(kb_article_id=article.id))
        assert "kb_article_id" in caught.value.errors
        db.rollback()
    live = _article(db, forum.brand_id, "Live")
    reply = service.create_reply(db, admin, forum.brand, _fields(kb_article_id=live.id))
    assert reply.kb_article_id == live.id


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("", None), ("12", 12), ("/kb/articles/7", 7), ("https://x.example/kb/articles/9/", 9)],
)
def test_the_article_is_given_by_number_path_or_link(typed: str, expected: int | None) -> None:
    assert service.parse_article_ref(typed) == expected


@pytest.mark.parametrize("typed", ["seven", "/t/12", "1" * 30, "-3"])
def test_anything_else_is_not_an_article(typed: str) -> None:
    with pytest.raises(FormErrors) as caught:
        service.parse_article_ref(typed)
    assert "kb_article_id" in caught.value.errors


def test_a_duplicate_title_in_the_same_language_is_a_form_error_not_a_500(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    first = service.create_reply(db, admin, forum.brand, _fields(title="Greeting"))
    db.commit()
    with pytest.raises(FormErrors) as caught:
        service.create_reply(db, admin, forum.brand, _fields(title="greeting"))
    assert "title" in caught.value.errors
    db.rollback()
    # The same title in the other language, or in another brand, is fine.
    service.create_reply(db, admin, forum.brand, _fields(title="Greeting", locale="es"))
    service.create_reply(db, admin, _other_brand(db), _fields(title="Greeting"))
    second = service.create_reply(db, admin, forum.brand, _fields(title="Other"))
    db.commit()
    with pytest.raises(FormErrors):
        service.update_reply(db, admin, second, _fields(title="Greeting"))
    db.rollback()
    # Saving a reply under its own title is not a duplicate.
    service.update_reply(db, admin, first, _fields(title="Greeting", body="Hello!"))
    db.commit()
    assert reloaded(db, first).body == "Hello!"


def test_a_replies_lookup_by_an_admin_of_another_brand_path_is_a_404(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("boss", role=Role.ADMIN)
    reply = service.create_reply(db, admin, forum.brand, _fields())
    db.commit()
    with pytest.raises(NotFound):
        service.access_managed_reply(db, admin, reply.id, _other_brand(db))
    with pytest.raises(NotFound):
        service.access_managed_reply(db, admin, 2**70)
    assert service.access_managed_reply(db, admin, reply.id, forum.brand) is reply


# --- placeholders ----------------------------------------------------------------------------


def test_unknown_fields_and_format_tricks_stay_as_typed() -> None:
    values = {"author_name": "Ana", "thread_title": "T", "kb_link": "/kb", "agent_name": "Bo"}
    body = "{0.__class__} {author_name.__class__} {author_name!r} {{author_name}} {} {x}"
    filled = fill(body, values)
    assert filled == "{0.__class__} {author_name.__class__} {author_name!r} {Ana} {} {x}"
    assert "class '" not in filled
    assert unknown_placeholders(body) == [
        "0.__class__",
        "author_name.__class__",
        "author_name!r",
        "x",
    ]
    assert fill("Dear {author_name}, {agent_name}", values) == "Dear Ana, Bo"


def test_a_reply_is_filled_for_the_thread_with_names_as_plain_text(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    asker.display_name = "[Win](https://evil.example) *Ana*"
    db.commit()
    item = escalated(db, qa, asker, "Roaming <b>stopped</b> in Spain")
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    reply = service.create_reply(
        db, admin, qa.forum.brand,
        _fields(body="Hi {author_name}, about {thread_title}: see {kb_link}. {agent_name}"),
    )  # fmt: skip
    db.commit()
    filled = use.fill_reply(db, ana, item.thread, reply, similar_path=None)
    assert filled.body == (
        r"Hi \[Win\](https://evil.example) \*Ana\*, about Roaming \<b\>stopped\</b\> in Spain: "
        "see /b/acme/kb. ana"
    )
    assert reloaded(db, reply).usage_count == 0  # filling is not using


def test_a_gone_author_is_greeted_with_a_neutral_word_in_the_replys_language(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    item = escalated(db, qa, asker)
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    english = service.create_reply(db, admin, qa.forum.brand, _fields(body="Hi {author_name}"))
    spanish = service.create_reply(
        db, admin, qa.forum.brand, _fields(locale="es", body="Hola {author_name}")
    )
    item.thread.author_id = None
    db.commit()
    thread = reloaded(db, item).thread
    assert thread.author is None
    assert use.fill_reply(db, ana, thread, english, similar_path=None).body == "Hi customer"
    spanish_body = use.fill_reply(db, ana, thread, spanish, similar_path=None).body
    assert spanish_body.startswith("Hola ") and "asker" not in spanish_body


def test_kb_link_is_the_pinned_article_else_the_similar_entry_else_the_kb_home(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    article = _article(db, qa.forum.brand_id)
    pinned = service.create_reply(
        db, admin, qa.forum.brand, _fields(body="{kb_link}", kb_article_id=article.id)
    )
    loose = service.create_reply(
        db, admin, qa.forum.brand, _fields(title="Loose", body="{kb_link}")
    )
    db.commit()
    thread = item.thread
    assert use.fill_reply(db, ana, thread, pinned, similar_path="/t/5").body == (
        f"/kb/articles/{article.id}"
    )
    assert use.fill_reply(db, ana, thread, loose, similar_path="/t/5").body == "/t/5"
    assert use.fill_reply(db, ana, thread, loose, similar_path=None).body == "/b/acme/kb"
    # An article unpublished since falls back like an unpinned reply.
    article.status = ArticleStatus.DRAFT
    db.commit()
    assert use.fill_reply(db, ana, thread, pinned, similar_path=None).body == "/b/acme/kb"


# --- search ----------------------------------------------------------------------------------


def _reply(
    db: Session, admin: User, brand: Brand, title: str, locale: str, uses: int, body: str = "Body"
) -> SavedReply:
    reply = service.create_reply(db, admin, brand, _fields(title=title, locale=locale, body=body))
    reply.usage_count = uses
    db.commit()
    return reply


def test_search_puts_the_threads_language_first_then_the_most_used(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    brand = forum.brand
    en_few = _reply(db, admin, brand, "Order number (short)", "en", 1)
    en_many = _reply(db, admin, brand, "Order number", "en", 9)
    es_many = _reply(db, admin, brand, "Número de pedido", "es", 50, "Su número de pedido")
    archived = _reply(db, admin, brand, "Order number (old)", "en", 99)
    service.set_archived(db, admin, archived, True)
    elsewhere = _reply(db, admin, _other_brand(db), "Order number", "en", 70)
    db.commit()

    assert use.search(db, ana, brand, "", "en") == [en_many, en_few, es_many]
    assert use.search(db, ana, brand, "", "es") == [es_many, en_many, en_few]
    # Case and accents do not matter; every word must be somewhere in the title or body.
    assert use.search(db, ana, brand, "NUMERO pedido", "en") == [es_many]
    assert use.search(db, ana, brand, "order SHORT", "en") == [en_few]
    assert use.search(db, ana, brand, "nothing like it", "en") == []
    assert archived not in use.search(db, ana, brand, "old", "en")
    assert elsewhere not in use.search(db, ana, brand, "order", "en")


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR])
def test_only_the_support_team_searches_and_inserts(
    db: Session, qa: QA, make_user: UserFactory, role: Role
) -> None:
    admin, someone = make_user("boss", role=Role.ADMIN), make_user("someone", role=role)
    reply = _reply(db, admin, qa.forum.brand, "Hello", "en", 0)
    with pytest.raises(PermissionDenied):
        use.search(db, someone, qa.forum.brand, "", "en")
    with pytest.raises(PermissionDenied):
        use.usable_reply(db, someone, qa.forum.brand_id, reply.id)


def test_an_archived_or_foreign_reply_cannot_be_inserted(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    archived = _reply(db, admin, forum.brand, "Old", "en", 0)
    service.set_archived(db, admin, archived, True)
    foreign = _reply(db, admin, _other_brand(db), "Foreign", "en", 0)
    db.commit()
    for reply in (archived, foreign):
        with pytest.raises(NotFound):
            use.usable_reply(db, ana, forum.brand_id, reply.id)


# --- usage -----------------------------------------------------------------------------------


def test_sending_counts_a_use_and_a_foreign_archived_or_bad_id_counts_nothing(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    mine = _reply(db, admin, qa.forum.brand, "Mine", "en", 0)
    archived = _reply(db, admin, qa.forum.brand, "Archived", "en", 0)
    service.set_archived(db, admin, archived, True)
    foreign = _reply(db, admin, _other_brand(db), "Foreign", "en", 0)
    db.commit()

    first = escalated(db, qa, asker, "First question about roaming")
    agent.perform(db, ana, first, "respond", agent.ActionForm(body="Hi", saved_reply=str(mine.id)))
    db.commit()
    counted = reloaded(db, mine)
    assert counted.usage_count == 1 and counted.last_used_at is not None

    for bad in (str(foreign.id), str(archived.id), "abc", "9" * 40, "-1", "١"):
        item = escalated(db, qa, asker, f"Another question {bad[:5]}")
        agent.perform(db, ana, item, "ask", agent.ActionForm(body="More?", saved_reply=bad))
        db.commit()
    assert reloaded(db, foreign).usage_count == 0
    assert reloaded(db, archived).usage_count == 0
    assert reloaded(db, mine).usage_count == 1

    # Claiming or linking with the field set is not sending the reply.
    other = escalated(db, qa, asker, "Yet another question")
    agent.perform(db, ana, other, "claim", agent.ActionForm(saved_reply=str(mine.id)))
    db.commit()
    assert reloaded(db, mine).usage_count == 1
    agent.perform(
        db, ana, other, "resolve", agent.ActionForm(body="Fixed.", saved_reply=str(mine.id))
    )
    db.commit()
    assert reloaded(db, mine).usage_count == 2


def test_a_refused_answer_counts_nothing(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker = make_user("asker")
    admin, ana = make_user("boss", role=Role.ADMIN), make_user("ana", role=Role.AGENT)
    mine = _reply(db, admin, qa.forum.brand, "Mine", "en", 0)
    item = escalated(db, qa, asker)
    with pytest.raises(FormErrors):
        agent.perform(
            db, ana, item, "respond", agent.ActionForm(body="  ", saved_reply=str(mine.id))
        )
    db.rollback()
    assert reloaded(db, mine).usage_count == 0


# --- demo ------------------------------------------------------------------------------------


def test_the_demo_replies_pass_the_admins_checks_in_both_languages(
    db: Session, passwords: Passwords
) -> None:
    brand = seed_demo(db, passwords)
    db.commit()
    replies = list(db.scalars(select(SavedReply).where(SavedReply.brand_id == brand.id)))
    assert {reply.locale for reply in replies} == {"en", "es"}
    assert {reply.action for reply in replies} == set(SuggestedAction)
    pinned = [reply for reply in replies if reply.kb_article_id is not None]
    assert len(pinned) == 1
    admin = db.scalars(select(User).where(User.username == "acme_admin")).one()
    for reply in replies:
        fields = service.ReplyFields(
            title=reply.title, locale=reply.locale, body=reply.body, action=reply.action.value,
            kb_article_id=reply.kb_article_id,
        )  # fmt: skip
        # Resaved as an admin would: every field passes the checks (FormErrors otherwise).
        service.update_reply(db, admin, reply, fields)
