"""Brands as admins run them (community.brand_admin): who may create, change, archive and bring
back a brand, every bound of its settings, the audit row of each action, and what archiving
means for everyone else (the brand getters, the thread, post, forum and article loaders)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from community import brand_admin, thread_reading, threads
from community.brand_schemas import BrandIn, BrandPatch
from community.core import indexing, service
from community.core.audit import AuditLog
from community.core.errors import FormErrors, NotFound, PermissionDenied
from community.core.forms import parse_form
from community.core.models import Brand, Forum, Role, User
from community.core.outbox import OutboxEvent
from community.core.schemas import AskIn
from community.core.staff import load_brand_roles
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import QA

UserFactory = Callable[..., User]


def brand_admin_of(db: Session, make_user: UserFactory, brand: Brand, name: str) -> User:
    """A member holding the brand-admin grant of `brand`, loaded with it."""
    user = make_user(name)
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=BrandRole.BRAND_ADMIN))
    db.commit()
    return load_brand_roles(db, user)


def make_brand(db: Session, slug: str, name: str) -> Brand:
    brand = Brand(slug=slug, name=name, description="", theme={}, default_locale="en")
    db.add(brand)
    db.commit()
    return brand


def audit_actions(db: Session) -> list[str]:
    db.expire_all()
    return [row.action for row in db.scalars(select(AuditLog).order_by(AuditLog.id))]


# --- creating ----------------------------------------------------------------------------------


def test_a_site_admin_creates_a_brand_with_its_settings_and_an_audit_row(
    db: Session, make_user: UserFactory
) -> None:
    admin = make_user("chief", role=Role.ADMIN)
    data = BrandIn(
        slug="globex", name="  Globex   Support ", default_locale="es",
        description="Routers and modems", contact_email="Help@Globex.example",
        solution_threshold=40, article_threshold=70, review_period_days=90,
    )  # fmt: skip
    brand = brand_admin.do_create_brand(db, admin, data, ip="192.0.2.1")
    db.commit()
    assert (brand.slug, brand.name, brand.default_locale) == ("globex", "Globex Support", "es")
    assert brand.contact_email == "Help@globex.example"  # the domain normalised, as accounts
    assert (brand.solution_threshold, brand.article_threshold) == (40, 70)
    assert brand.review_period_days == 90 and brand.archived_at is None
    entry = db.scalars(select(AuditLog).where(AuditLog.action == "brand.created")).one()
    assert entry.actor_id == admin.id and entry.target_id == str(brand.id)
    assert entry.after is not None and entry.after["slug"] == "globex"
    assert entry.ip == "192.0.2.1"


def test_a_new_brand_gets_the_model_defaults(db: Session, make_user: UserFactory) -> None:
    admin = make_user("chief", role=Role.ADMIN)
    brand = brand_admin.do_create_brand(db, admin, BrandIn(slug="initech", name="Initech"))
    db.commit()
    assert (brand.default_locale, brand.solution_threshold, brand.article_threshold) == (
        "en",
        35.0,
        60.0,
    )
    assert brand.review_period_days == 180 and brand.contact_email == ""


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_only_site_admins_create_brands(db: Session, make_user: UserFactory, role: Role) -> None:
    user = make_user("someone", role=role)
    with pytest.raises(PermissionDenied):
        brand_admin.do_create_brand(db, user, BrandIn(slug="globex", name="Globex"))
    db.rollback()
    assert db.scalar(select(Brand).where(Brand.slug == "globex")) is None


def test_a_brand_admin_cannot_create_brands(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    owner = brand_admin_of(db, make_user, forum.brand, "owner")
    with pytest.raises(PermissionDenied):
        brand_admin.do_create_brand(db, owner, BrandIn(slug="globex", name="Globex"))


@pytest.mark.parametrize("slug", ["acme", "new"])
def test_a_slug_in_use_or_reserved_is_a_conflict(
    db: Session, make_user: UserFactory, forum: Forum, slug: str
) -> None:
    admin = make_user("chief", role=Role.ADMIN)
    with pytest.raises(brand_admin.SlugTaken) as caught:
        brand_admin.do_create_brand(db, admin, BrandIn(slug=slug, name="Another"))
    assert caught.value.status_code == 409 and "slug" in caught.value.errors
    db.rollback()
    assert len(service.list_brands(db, include_archived=True)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "A"),
        ("slug", "Acme"),
        ("slug", "-acme"),
        ("slug", "acme-"),
        ("slug", "ac me"),
        ("slug", "a" * 41),
        ("slug", "acmé"),
        ("name", "   "),
        ("name", "x" * 101),
        ("name", "bad\x00name"),
        ("default_locale", "fr"),
        ("contact_email", "not an address"),
        ("solution_threshold", "101"),
        ("solution_threshold", "-1"),
        ("solution_threshold", "nan"),
        ("solution_threshold", "1_0"),
        ("article_threshold", "inf"),
        ("review_period_days", "6"),
        ("review_period_days", "3651"),
        ("review_period_days", "30.5"),
        ("description", "d" * 2001),
        ("code_of_conduct", "c" * 20_001),
        ("colour", "red"),
    ],
)
def test_bad_brand_input_names_the_field(field: str, value: str) -> None:
    fields = {"slug": "globex", "name": "Globex", field: value}
    with pytest.raises(FormErrors) as caught:
        parse_form(BrandIn, fields)
    assert field in caught.value.errors


# --- changing ----------------------------------------------------------------------------------


def test_a_brand_admin_changes_their_brand_and_only_theirs(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    acme = forum.brand
    globex = make_brand(db, "globex", "Globex")
    owner = brand_admin_of(db, make_user, acme, "owner")
    changed = brand_admin.do_update_brand(
        db, owner, acme, BrandPatch(description="Phones", code_of_conduct="# Be kind")
    )
    db.commit()
    assert changed and (acme.description, acme.code_of_conduct) == ("Phones", "# Be kind")
    entry = db.scalars(select(AuditLog).where(AuditLog.action == "brand.updated")).one()
    assert entry.before == {"description": "", "code_of_conduct": ""}
    assert entry.after == {"description": "Phones", "code_of_conduct": "# Be kind"}
    with pytest.raises(PermissionDenied):
        brand_admin.do_update_brand(db, owner, globex, BrandPatch(name="Mine now"))
    with pytest.raises(PermissionDenied):
        brand_admin.access_managed_brand(db, owner, "globex")
    db.rollback()
    assert db.get(Brand, globex.id).name == "Globex"  # type: ignore[union-attr]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR, Role.AGENT])
def test_staff_without_the_grant_cannot_change_a_brand(
    db: Session, make_user: UserFactory, forum: Forum, role: Role
) -> None:
    user = make_user("someone", role=role)
    with pytest.raises(PermissionDenied):
        brand_admin.access_managed_brand(db, user, "acme")
    with pytest.raises(PermissionDenied):
        brand_admin.do_update_brand(db, user, forum.brand, BrandPatch(name="Hijacked"))


def test_nothing_sent_or_the_same_values_change_nothing_and_write_no_audit(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    admin = make_user("chief", role=Role.ADMIN)
    assert not brand_admin.do_update_brand(db, admin, forum.brand, BrandPatch())
    assert not brand_admin.do_update_brand(db, admin, forum.brand, BrandPatch(name="Acme"))
    db.commit()
    assert audit_actions(db) == []


def test_the_article_threshold_is_never_below_the_solution_threshold(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    admin = make_user("chief", role=Role.ADMIN)
    brand = forum.brand
    with pytest.raises(FormErrors) as caught:
        brand_admin.do_update_brand(db, admin, brand, BrandPatch(solution_threshold=80))
    assert "article_threshold" in caught.value.errors
    db.rollback()
    assert brand.solution_threshold == 35.0
    # Both at once, in a consistent order, pass; zero is a threshold too.
    patch = BrandPatch(solution_threshold=0, article_threshold=0)
    assert brand_admin.do_update_brand(db, admin, brand, patch)
    assert (brand.solution_threshold, brand.article_threshold) == (0, 0)


# --- archiving ---------------------------------------------------------------------------------


def test_only_site_admins_archive_and_each_change_is_audited_once(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    brand = forum.brand
    owner = brand_admin_of(db, make_user, brand, "owner")
    with pytest.raises(PermissionDenied):
        brand_admin.do_set_brand_archived(db, owner, brand, True)
    admin = make_user("chief", role=Role.ADMIN)
    assert brand_admin.do_set_brand_archived(db, admin, brand, True)
    assert not brand_admin.do_set_brand_archived(db, admin, brand, True)  # already archived
    db.commit()
    assert brand.archived_at is not None
    assert brand_admin.do_set_brand_archived(db, admin, brand, False)
    db.commit()
    assert brand.archived_at is None
    assert audit_actions(db) == ["brand.archived", "brand.unarchived"]
    # Search follows: the brand's documents are indexed again (helper events, deduplicated).
    scope = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == indexing.SCOPE_CHANGED))
    assert [event.payload for event in scope] == [{"brand_id": brand.id}]


def test_an_archived_brand_is_gone_for_all_but_site_admins(
    db: Session, make_user: UserFactory, qa: QA
) -> None:
    member = make_user("member")
    thread = qa.ask(member)
    answer = qa.answer(make_user("helper"), thread)
    brand = qa.forum.brand
    other = make_brand(db, "globex", "Globex")
    admin = make_user("chief", role=Role.ADMIN)
    owner = brand_admin_of(db, make_user, brand, "owner")
    brand_admin.do_set_brand_archived(db, admin, brand, True)
    db.commit()

    # The brand lists and the default brand skip it; the getters 404.
    assert [b.slug for b in service.list_brands(db)] == ["globex"]
    assert {b.slug for b in service.list_brands(db, include_archived=True)} == {"acme", "globex"}
    assert service.default_brand(db, "acme") == other
    assert service.default_brand(db) == other
    for viewer in (None, member, owner):
        with pytest.raises(NotFound):
            service.get_brand(db, "acme", viewer=viewer)
        with pytest.raises(NotFound):
            service.get_brand_by_id(db, brand.id, viewer=viewer)
        with pytest.raises(NotFound):
            thread_reading.forum_by_slugs(db, "acme", "mobile", viewer)
        with pytest.raises(NotFound):
            threads.access_thread(db, viewer, thread.id)
        with pytest.raises(NotFound):
            threads.access_post(db, viewer, answer.id)
    # Even its own brand admin may not administer it while it is archived.
    with pytest.raises(NotFound):
        brand_admin.access_managed_brand(db, owner, "acme")
    # Site admins still see and administer everything; nothing was deleted.
    assert service.get_brand(db, "acme", viewer=admin) == brand
    assert threads.access_thread(db, admin, thread.id).id == thread.id
    assert threads.access_post(db, admin, answer.id).id == answer.id
    assert brand_admin.access_managed_brand(db, admin, "acme") == brand
    # Back: everyone sees it again.
    brand_admin.do_set_brand_archived(db, admin, brand, False)
    db.commit()
    assert threads.access_thread(db, None, thread.id).id == thread.id
    assert service.default_brand(db, "acme") == brand


def test_the_brand_list_of_a_brand_admin_holds_their_live_brands(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    globex = make_brand(db, "globex", "Globex")
    archived = make_brand(db, "initech", "Initech")
    owner = brand_admin_of(db, make_user, forum.brand, "owner")
    db.add(StaffGrant(user_id=owner.id, brand_id=archived.id, role=BrandRole.BRAND_ADMIN))
    db.add(StaffGrant(user_id=owner.id, brand_id=globex.id, role=BrandRole.MODERATOR))
    admin = make_user("chief", role=Role.ADMIN)
    brand_admin.do_set_brand_archived(db, admin, archived, True)
    db.commit()
    assert [b.slug for b in brand_admin.managed_brands(db, owner)] == ["acme"]
    # Site admins: every brand, the archived ones last.
    assert [b.slug for b in brand_admin.managed_brands(db, admin)] == ["acme", "globex", "initech"]
    assert brand_admin.managed_brands(db, make_user("member")) == []


def test_the_command_line_is_trusted_and_audited_as_such(db: Session, forum: Forum) -> None:
    cli = brand_admin.COMMAND_LINE
    brand = brand_admin.do_create_brand(db, cli, BrandIn(slug="globex", name="Globex"))
    brand_admin.do_update_brand(db, cli, forum.brand, BrandPatch(description="Phones"))
    brand_admin.do_set_brand_archived(db, cli, brand, True)
    db.commit()
    rows = list(db.scalars(select(AuditLog).order_by(AuditLog.id)))
    assert [row.action for row in rows] == ["brand.created", "brand.updated", "brand.archived"]
    assert all(row.actor_id is None and row.reason == "command line" for row in rows)


def test_asking_in_an_archived_brand_or_forum_is_refused(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    member = make_user("member")
    question = AskIn(title="How do I reset my router?", body="It blinks red since this morning.")
    forum.archived_at = forum.created_at
    db.commit()
    with pytest.raises(FormErrors) as caught:
        threads.ask(db, member, forum, question, locale="en")
    assert "forum" in caught.value.errors
    db.rollback()
    assert service.list_forums(db, forum.brand) == []
    assert service.list_forums(db, forum.brand, include_archived=True) == [forum]
