"""Staff per brand: a moderator, agent or brand admin of one brand is staff there and nobody in
another. Every check (pages, API, services) is scoped to the brand of what is acted on; queues,
workspaces and dashboards open on the brands the person staffs; grants are given and taken by
the brand's admins (page, API, command line) and audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from community.cli import app as cli_app
from community.core import policy
from community.core.audit import AuditLog
from community.core.auth import viewer_of
from community.core.errors import NotFound, PermissionDenied
from community.core.models import (
    Brand,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.staff import load_brand_roles
from community.core.workspace_models import BrandRole, StaffGrant
from community.worker import Worker
from crowdservice import escalation, triage
from crowdservice.followup import service as followup
from crowdservice.insights.weekly import send_weekly_summaries
from crowdservice.models import Escalation, EscalationReason
from kb import service as kb_service
from kb.models import ArticleStatus
from kb.schemas import ArticleCreateIn, ArticleIn
from moderation import actions
from moderation.models import ItemStatus, QueueItem
from tests.conftest import QA, Inbox, csrf_token, fresh, log_in

UserFactory = Callable[..., User]


@dataclass
class Brands:
    a: Brand
    b: Brand
    qa_a: QA
    qa_b: QA


@pytest.fixture
def brands(db: Session, qa: QA) -> Brands:
    """Acme (the `qa` fixture's brand) and a second brand, Globex, each with a forum."""
    acme = db.get(Brand, qa.forum.brand_id)
    assert acme is not None
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(globex)
    db.flush()
    forum = Forum(brand_id=globex.id, slug="routers", name="Routers", description="")
    db.add(forum)
    db.commit()
    return Brands(acme, globex, qa, QA(db, forum))


def _grant(db: Session, user: User, brand: Brand, role: BrandRole) -> User:
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=role))
    db.commit()
    return load_brand_roles(db, user)


def _client(make_client: Callable[[], TestClient], user: User) -> TestClient:
    test_client = make_client()
    log_in(test_client, user.username)
    return test_client


def test_predicates_answer_per_brand(db: Session, brands: Brands, make_user: UserFactory) -> None:
    moderator = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    agent = _grant(db, make_user("abe"), brands.a, BrandRole.AGENT)
    brand_admin = _grant(db, make_user("bea"), brands.a, BrandRole.BRAND_ADMIN)
    site_moderator = make_user("sam", role=Role.MODERATOR)
    a, b = brands.a.id, brands.b.id
    assert policy.can_moderate(moderator, a) and not policy.can_moderate(moderator, b)
    assert policy.is_staff(moderator, a) and not policy.is_staff(moderator, b)
    assert not policy.is_agent(moderator, a)
    assert policy.is_agent(agent, a) and not policy.is_agent(agent, b)
    assert not policy.can_moderate(agent, a)
    # A brand admin is to their brand what a site admin is to every brand.
    for check in (policy.can_moderate, policy.is_agent, policy.is_staff):
        assert check(brand_admin, a) and not check(brand_admin, b)
    assert policy.is_brand_admin(brand_admin, a) and not policy.is_brand_admin(brand_admin, b)
    assert not policy.is_admin(brand_admin)
    # "In any brand" (menus): grant holders are staff somewhere; site-wide roles everywhere.
    assert policy.can_moderate(moderator) and policy.staffed_brands(moderator) == {a}
    assert policy.can_moderate(site_moderator, b) and policy.staffed_brands(site_moderator) is None
    # A row loaded without the viewer holds no grants: only its site-wide role counts.
    db.expunge(moderator)
    plain = db.get(User, moderator.id)
    assert plain is not None and not policy.is_staff(plain, a)
    # The request's viewer carries them.
    viewer = viewer_of(moderator, brand_roles=moderator.brand_roles)
    assert viewer.can_moderate and policy.can_moderate(viewer, a)
    assert not policy.can_moderate(viewer, b)


def test_queues_and_workspaces_are_scoped_to_the_brand(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    moderator = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    agent = _grant(db, make_user("abe"), brands.a, BrandRole.AGENT)
    as_moderator, as_agent = _client(make_client, moderator), _client(make_client, agent)
    assert as_moderator.get("/b/acme/mod").status_code == 200
    assert as_moderator.get("/b/globex/mod").status_code == 403
    assert as_moderator.get("/b/globex/mod/flagged").status_code == 403
    assert as_moderator.get("/b/acme/agent").status_code == 403
    assert as_agent.get("/b/acme/agent").status_code == 200
    assert as_agent.get("/b/globex/agent").status_code == 403
    assert as_agent.get("/b/acme/insights").status_code == 200
    assert as_agent.get("/b/globex/insights").status_code == 403
    assert as_agent.get("/b/acme/kb/queue").status_code == 200
    assert as_agent.get("/b/globex/kb/queue").status_code == 403
    # The shortcuts open on a brand the person staffs, not on the site's default.
    globex_only = _grant(db, make_user("gil"), brands.b, BrandRole.MODERATOR)
    landing = _client(make_client, globex_only).get("/mod", follow_redirects=False)
    assert landing.headers["location"] == "/b/globex/mod"
    # The audit log spans every brand: site-wide staff only.
    assert as_moderator.get("/mod/audit").status_code == 403


def test_a_moderator_of_one_brand_cannot_act_in_another(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    moderator = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    asker = make_user("asker")
    ours = brands.qa_a.ask(asker, title="Where is my bill this month?")
    theirs = brands.qa_b.ask(asker, title="My router keeps restarting at night")
    as_moderator = _client(make_client, moderator)
    token = csrf_token(as_moderator, "/")
    refused = as_moderator.post(
        f"/mod/threads/{theirs.id}/lock", data={"csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 403
    fresh(db)
    assert db.get(Thread, theirs.id).locked_at is None  # type: ignore[union-attr]
    done = as_moderator.post(
        f"/mod/threads/{ours.id}/lock", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    fresh(db)
    assert db.get(Thread, ours.id).locked_at is not None  # type: ignore[union-attr]
    # The service says the same to any caller.
    theirs_again = db.get(Thread, theirs.id)
    assert theirs_again is not None
    with pytest.raises(PermissionDenied):
        actions.set_locked(db, load_brand_roles(db, moderator), theirs_again, True, reason=None)


def test_held_content_is_shown_to_its_brands_staff_only(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    newcomer = make_user("newbie", trust_level=0)
    held = brands.qa_b.ask(newcomer, title="First post here: how do I reset the router?")
    fresh(db)
    assert db.get(Thread, held.id).visibility == Visibility.PENDING  # type: ignore[union-attr]
    ours = _grant(db, make_user("gil"), brands.b, BrandRole.MODERATOR)
    other = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    assert _client(make_client, ours).get(f"/t/{held.id}").status_code == 200
    assert _client(make_client, other).get(f"/t/{held.id}").status_code == 404
    api = _client(make_client, other).get(f"/api/v1/threads/{held.id}")
    assert api.status_code == 404


def test_agents_work_only_their_brands_escalations(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    asker = make_user("asker")
    thread = brands.qa_b.ask(asker, title="The router lost its settings again")
    item = escalation.escalate(db, thread, EscalationReason.AUTHOR_REQUEST, actor=asker)
    db.commit()
    outsider = _grant(db, make_user("abe"), brands.a, BrandRole.AGENT)
    insider = _grant(db, make_user("gus"), brands.b, BrandRole.AGENT)
    as_outsider = _client(make_client, outsider)
    assert as_outsider.get(f"/agent/escalations/{item.id}").status_code == 404
    refused = as_outsider.post(
        f"/agent/escalations/{item.id}/claim",
        data={"csrf_token": csrf_token(as_outsider, "/")},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    fresh(db)
    assert db.get(Escalation, item.id).assigned_agent_id is None  # type: ignore[union-attr]
    as_insider = _client(make_client, insider)
    assert as_insider.get(f"/agent/escalations/{item.id}").status_code == 200
    claimed = as_insider.post(
        f"/agent/escalations/{item.id}/claim",
        data={"csrf_token": csrf_token(as_insider, "/")},
        follow_redirects=False,
    )
    assert claimed.status_code == 303
    fresh(db)
    assert db.get(Escalation, item.id).assigned_agent_id == insider.id  # type: ignore[union-attr]


def test_official_answers_and_curation_follow_the_brand(
    db: Session, brands: Brands, make_user: UserFactory
) -> None:
    agent = _grant(db, make_user("abe"), brands.a, BrandRole.AGENT)
    asker = make_user("asker")
    in_acme = brands.qa_a.answer(agent, brands.qa_a.ask(asker, title="Bill question for acme"))
    in_globex = brands.qa_b.answer(agent, brands.qa_b.ask(asker, title="Router question here"))
    fresh(db)
    assert db.get(Post, in_acme.id).is_official  # type: ignore[union-attr]
    assert not db.get(Post, in_globex.id).is_official  # type: ignore[union-attr]
    agent = load_brand_roles(db, agent)
    fields = {"title": "Resetting the router", "summary": "How to", "body": "Hold the button."}
    article = kb_service.create_article(db, agent, brands.a, ArticleCreateIn(**fields))
    db.commit()
    with pytest.raises(PermissionDenied):
        kb_service.create_article(db, agent, brands.b, ArticleCreateIn(**fields))
    db.rollback()
    other = _grant(db, make_user("gus"), brands.b, BrandRole.AGENT)
    with pytest.raises(PermissionDenied):
        kb_service.update_article(db, other, article, ArticleIn(**fields))
    with pytest.raises(NotFound):  # a draft: for anyone but its brand's curators, no such page
        kb_service.access_curated_article(db, other, article.id)
    kb_service.change_status(db, agent, article, ArticleStatus.PUBLISHED)
    db.commit()
    with pytest.raises(PermissionDenied):  # published: readable, but not theirs to edit
        kb_service.access_curated_article(db, other, article.id)
    assert kb_service.access_curated_article(db, agent, article.id).id == article.id


def test_brand_admins_grant_and_revoke_in_their_brand_only(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    brand_admin = _grant(db, make_user("bea"), brands.a, BrandRole.BRAND_ADMIN)
    member = make_user("mel")
    as_admin = _client(make_client, brand_admin)
    assert as_admin.get("/admin/brands/acme/staff").status_code == 200
    assert as_admin.get("/admin/brands/globex/staff").status_code == 403
    assert as_admin.get("/admin/brands/acme/moderation").status_code == 200
    assert as_admin.get("/admin/brands/globex/moderation").status_code == 403
    token = csrf_token(as_admin, "/admin/brands/acme/staff")
    granted = as_admin.post(
        "/admin/brands/acme/staff",
        data={"csrf_token": token, "username": "mel", "role": "moderator"},
        follow_redirects=False,
    )
    assert granted.status_code == 303
    elsewhere = as_admin.post(
        "/admin/brands/globex/staff",
        data={"csrf_token": token, "username": "mel", "role": "moderator"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403
    fresh(db)
    grants = db.execute(select(StaffGrant.brand_id, StaffGrant.role).where(
        StaffGrant.user_id == member.id)).all()  # fmt: skip
    assert grants == [(brands.a.id, BrandRole.MODERATOR)]
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "staff.granted")).all()
    assert [(row.actor_id, row.target_id) for row in audit] == [(brand_admin.id, str(member.id))]
    # The new moderator works the brand's queue from their next request on.
    assert _client(make_client, member).get("/b/acme/mod").status_code == 200
    # Nobody changes their own roles; bad input changes nothing.
    own = as_admin.post(
        f"/admin/brands/acme/staff/{brand_admin.id}/brand_admin/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert own.status_code == 403
    for bad in ({"username": "nobody-here", "role": "agent"}, {"username": "mel", "role": "boss"}):
        response = as_admin.post("/admin/brands/acme/staff", data={"csrf_token": token, **bad})
        assert response.status_code == 422
    revoked = as_admin.post(
        f"/admin/brands/acme/staff/{member.id}/moderator/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    fresh(db)
    assert db.scalar(select(StaffGrant).where(StaffGrant.user_id == member.id)) is None
    assert _client(make_client, member).get("/b/acme/mod").status_code == 403


def test_staff_api_and_its_guards(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    brand_admin = _grant(db, make_user("bea"), brands.a, BrandRole.BRAND_ADMIN)
    moderator = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    make_user("mel")
    as_admin = _client(make_client, brand_admin)
    headers = {"X-CSRF-Token": csrf_token(as_admin, "/")}
    created = as_admin.post(
        "/api/v1/brands/acme/staff", json={"username": "mel", "role": "agent"}, headers=headers
    )
    assert created.status_code == 201
    names = {member["username"]: member["roles"] for member in created.json()}
    assert names["mel"] == ["agent"] and names["mona"] == ["moderator"]
    bad = as_admin.post(
        "/api/v1/brands/acme/staff", json={"username": "mel", "role": "owner"}, headers=headers
    )
    assert bad.status_code == 422
    assert as_admin.get("/api/v1/brands/globex/staff").status_code == 403
    as_moderator = _client(make_client, moderator)
    refused = as_moderator.post(
        "/api/v1/brands/acme/staff",
        json={"username": "mel", "role": "brand_admin"},
        headers={"X-CSRF-Token": csrf_token(as_moderator, "/")},
    )
    assert refused.status_code == 403
    no_csrf = as_admin.post("/api/v1/brands/acme/staff", json={"username": "mel", "role": "agent"})
    assert no_csrf.status_code == 403


def test_the_command_line_names_a_brands_first_admin(
    db: Session, brands: Brands, make_user: UserFactory, cli_env: None
) -> None:
    person = make_user("bea")
    runner = CliRunner()
    result = runner.invoke(cli_app, ["staff", "grant", "globex", "bea", "brand_admin"])
    assert result.exit_code == 0, result.output
    assert "granted: bea brand_admin of globex" in result.output
    listed = runner.invoke(cli_app, ["staff", "list", "globex"])
    assert listed.output.split() == ["bea", "brand_admin"]
    missing = runner.invoke(cli_app, ["staff", "grant", "nowhere", "bea", "agent"])
    assert missing.exit_code == 1 and "no brand 'nowhere'" in missing.output
    fresh(db)
    held = load_brand_roles(db, db.get(User, person.id))  # type: ignore[arg-type]
    assert policy.is_brand_admin(held, brands.b.id) and not policy.is_staff(held, brands.a.id)


def test_a_brands_admins_get_its_weekly_summary_and_no_other(
    db: Session, brands: Brands, make_user: UserFactory
) -> None:
    site_admin = make_user("sid", role=Role.ADMIN)
    acme_admin = _grant(db, make_user("bea"), brands.a, BrandRole.BRAND_ADMIN)
    _grant(db, make_user("abe"), brands.a, BrandRole.AGENT)  # agents get no summary
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert send_weekly_summaries(db, now=monday) == 3
    db.commit()
    sent = db.scalars(select(Notification).where(Notification.kind == NotificationKind.INSIGHTS))
    paths = sorted((row.user_id, str(row.data["path"]).split("/")[2]) for row in sent)
    assert paths == sorted(
        [(site_admin.id, "acme"), (site_admin.id, "globex"), (acme_admin.id, "acme")]
    )


def test_emails_and_feeds_link_to_the_brands_own_host(
    db: Session,
    brands: Brands,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    """BASE_URL is https://support.example (mail_settings); Globex is served on its own host."""
    inbox, _port = smtp
    brands.b.host = "help.globex.example"
    db.commit()
    asker = make_user("lucia")
    on_globex = brands.qa_b.ask(asker, title="The router blinks red after the update")
    brands.qa_b.answer(make_user("helper"), on_globex)
    on_acme = brands.qa_a.ask(asker, title="My bill shows a charge twice this month")
    brands.qa_a.answer(make_user("other"), on_acme)
    mail_worker().run_once()
    bodies = "\n".join(inbox.bodies())
    assert f"https://help.globex.example/t/{on_globex.id}" in bodies
    assert f"https://support.example/t/{on_acme.id}" in bodies
    feed = make_client().get("/b/globex/routers/feed.atom")
    assert feed.status_code == 200
    assert f"/help.globex.example/t/{on_globex.id}" in feed.text


def test_bulk_moderation_never_shows_or_touches_another_brands_items(
    db: Session, brands: Brands, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    newcomer = make_user("newbie", trust_level=0)
    held = brands.qa_b.ask(newcomer, title="A first post in Globex that waits for review")
    fresh(db)
    item = db.scalars(select(QueueItem).where(QueueItem.post_id.is_not(None))).one()
    assert item.brand_id == brands.b.id
    outsider = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    as_outsider = _client(make_client, outsider)
    token = csrf_token(as_outsider, "/")
    # "spam" asks for a confirmation page listing the items: none of Globex's appear.
    confirm = as_outsider.post(
        "/mod/items/bulk",
        data={"csrf_token": token, "decision": "spam", "items": [str(item.id)]},
        follow_redirects=False,
    )
    assert held.title not in confirm.text
    done = as_outsider.post(
        "/mod/items/bulk",
        data={"csrf_token": token, "decision": "approve", "items": [str(item.id)], "confirm": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    fresh(db)
    assert db.get(QueueItem, item.id).status == ItemStatus.OPEN  # type: ignore[union-attr]
    assert db.get(Thread, held.id).visibility == Visibility.PENDING  # type: ignore[union-attr]


def test_private_follow_ups_and_triage_corrections_follow_the_brand(
    db: Session, brands: Brands, make_user: UserFactory
) -> None:
    customer = make_user("cora")
    thread = brands.qa_b.ask(customer, title="My router drops the connection every hour")
    agent = _grant(db, make_user("gus"), brands.b, BrandRole.AGENT)
    conversation = followup.open_followup(db, agent, thread, "Can you send your router model?")
    db.commit()
    db.expunge_all()  # a later request: nothing loaded holds the agent's grants any more
    reader = db.get(User, customer.id)
    assert reader is not None
    followup.reply(db, reader, db.get(type(conversation), conversation.id), "It is an RX-100.")  # type: ignore[arg-type]
    db.commit()
    # The brand's own agent hears the customer's reply (a grant, not a site-wide role).
    heard = db.scalars(
        select(Notification).where(
            Notification.user_id == agent.id,
            Notification.kind == NotificationKind.PRIVATE_MESSAGE,
        )
    ).all()
    assert len(heard) == 1
    outsider = _grant(db, make_user("mona"), brands.a, BrandRole.MODERATOR)
    fresh(db)
    loaded = db.get(Thread, thread.id)
    assert loaded is not None
    with pytest.raises(PermissionDenied):
        triage.correct_triage(
            db, outsider, loaded, interaction_type="praise", sentiment=None, priority=None,
            segment=None, reason="not a problem",
        )  # fmt: skip
