"""The brand administration API (/api/v1/brands...): who may call each route (anonymous 401,
member 403, a brand admin of another brand 403, site admins), JSON errors (404, 409, 422 naming
the field) that change nothing, CSRF for cookie sessions, the documented error responses, and
the bulk move keeping counters; plus the `community brand` and `community forum` commands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from community.cli import app as cli
from community.core.audit import AuditLog
from community.core.models import Brand, Forum, ForumAccess, Role, Thread, User
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import QA, csrf_token, fresh, log_in

AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
UserFactory = Callable[..., User]
runner = CliRunner()
MOVE = "/api/v1/brands/acme/threads/move"


def _headers(browser: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_token(browser, "/")}


def _brand(db: Session, slug: str) -> Brand | None:
    fresh(db)
    return db.scalar(select(Brand).where(Brand.slug == slug))


@pytest.fixture
def globex(db: Session, forum: Forum) -> Brand:
    brand = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(brand)
    db.flush()
    db.add(Forum(brand_id=brand.id, slug="routers", name="Routers"))
    db.commit()
    return brand


# Every route, with a body that would be accepted.
CALLS: list[tuple[str, str, dict[str, object] | None]] = [
    ("POST", "/api/v1/brands", {"slug": "initech", "name": "Initech"}),
    ("PATCH", "/api/v1/brands/globex", {"description": "Routers"}),
    ("POST", "/api/v1/brands/globex/archive", None),
    ("POST", "/api/v1/brands/globex/unarchive", None),
    ("POST", "/api/v1/brands/globex/forums", {"slug": "modems", "name": "Modems"}),
    ("PATCH", "/api/v1/brands/globex/forums/routers", {"name": "Routers and modems"}),
    ("POST", "/api/v1/brands/globex/forums/routers/archive", None),
    ("POST", "/api/v1/brands/globex/threads/move", {"thread_ids": [1], "forum": "routers"}),
]


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_anonymous_callers_get_401_and_members_403(
    as_role: AsRole, db: Session, globex: Brand, method: str, path: str, body: object
) -> None:
    anonymous, _nobody = as_role(None)
    assert anonymous.request(method, path, json=body).status_code in (401, 403)
    member, _member = as_role(Role.MEMBER)
    response = member.request(method, path, json=body, headers=_headers(member))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert db.scalars(select(AuditLog)).all() == []


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_a_brand_admin_of_another_brand_gets_403(
    db: Session,
    globex: Brand,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    method: str,
    path: str,
    body: object,
) -> None:
    owner = make_user("owner")
    acme = _brand(db, "acme")
    assert acme is not None
    db.add(StaffGrant(user_id=owner.id, brand_id=acme.id, role=BrandRole.BRAND_ADMIN))
    db.commit()
    browser = make_client()
    log_in(browser, "owner")
    assert browser.request(method, path, json=body, headers=_headers(browser)).status_code == 403
    assert _brand(db, "globex").description == ""  # type: ignore[union-attr]
    assert _brand(db, "initech") is None


def test_a_site_admin_runs_brands_and_forums_through_the_api(
    as_role: AsRole, db: Session, forum: Forum
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    headers = _headers(browser)
    created = browser.post(
        "/api/v1/brands",
        json={"slug": "initech", "name": "Initech", "default_locale": "es"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["slug"] == "initech" and created.json()["archived_at"] is None
    changed = browser.patch(
        "/api/v1/brands/initech",
        json={"contact_email": "help@initech.example", "review_period_days": 30},
        headers=headers,
    )
    assert changed.status_code == 200
    assert changed.json()["contact_email"] == "help@initech.example"
    forum_made = browser.post(
        "/api/v1/brands/initech/forums",
        json={"slug": "printers", "name": "Printers", "access": "staff"},
        headers=headers,
    )
    assert forum_made.status_code == 201 and forum_made.json()["access"] == "staff"
    renamed = browser.patch(
        "/api/v1/brands/initech/forums/printers",
        json={"name": "Printers and faxes", "access": "public"},
        headers=headers,
    )
    assert renamed.status_code == 200 and renamed.json()["access"] == "public"
    archived = browser.post("/api/v1/brands/initech/forums/printers/archive", headers=headers)
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    gone = browser.post("/api/v1/brands/initech/archive", headers=headers)
    assert gone.status_code == 200 and gone.json()["archived_at"] is not None
    assert "initech" not in [b["slug"] for b in browser.get("/api/v1/brands").json()]
    back = browser.post("/api/v1/brands/initech/unarchive", headers=headers)
    assert back.status_code == 200 and back.json()["archived_at"] is None
    fresh(db)
    assert [row.action for row in db.scalars(select(AuditLog).order_by(AuditLog.id))] == [
        "brand.created",
        "brand.updated",
        "forum.created",
        "forum.updated",
        "forum.archived",
        "brand.archived",
        "brand.unarchived",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/brands", {"slug": "acme", "name": "Acme again"}, 409, "slug"),
        ("POST", "/api/v1/brands", {"slug": "Not A Slug", "name": "X"}, 422, "slug"),
        ("POST", "/api/v1/brands", {"slug": "x1", "name": "X", "owner": 1}, 422, "owner"),
        ("PATCH", "/api/v1/brands/acme", {"default_locale": "de"}, 422, "default_locale"),
        ("PATCH", "/api/v1/brands/acme", {"solution_threshold": 101}, 422, "solution_threshold"),
        ("PATCH", "/api/v1/brands/acme", {"contact_email": "nope"}, 422, "contact_email"),
        ("PATCH", "/api/v1/brands/acme", {"slug": "renamed"}, 422, "slug"),
        ("PATCH", "/api/v1/brands/nope", {"name": "X"}, 404, None),
        ("POST", "/api/v1/brands/acme/forums", {"slug": "mobile", "name": "M"}, 409, "slug"),
        ("POST", "/api/v1/brands/acme/forums", {"slug": "kb", "name": "KB"}, 422, "slug"),
        ("PATCH", "/api/v1/brands/acme/forums/mobile", {"access": "vip"}, 422, "access"),
        ("PATCH", "/api/v1/brands/acme/forums/mobile", {"position": -1}, 422, "position"),
        ("PATCH", "/api/v1/brands/acme/forums/nope", {"name": "X"}, 404, None),
        ("POST", MOVE, {"thread_ids": [], "forum": "mobile"}, 422, "thread_ids"),
        ("POST", MOVE, {"thread_ids": [999], "forum": "mobile"}, 422, "thread_ids"),
        ("POST", MOVE, {"thread_ids": [1], "forum": "nope"}, 422, "forum"),
    ],
)
def test_bad_input_is_a_clear_json_error_and_changes_nothing(
    as_role: AsRole,
    db: Session,
    forum: Forum,
    method: str,
    path: str,
    body: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    response = browser.request(method, path, json=body, headers=_headers(browser))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        details = error.get("details")
        named = details.keys() if isinstance(details, dict) else [d["field"] for d in details]
        assert field in named, error
    fresh(db)
    acme = _brand(db, "acme")
    assert acme is not None and acme.name == "Acme" and acme.default_locale == "en"
    assert [(f.slug, f.access) for f in acme.forums] == [("mobile", ForumAccess.PUBLIC)]
    assert db.scalars(select(AuditLog)).all() == []


def test_cookie_calls_need_the_csrf_token(as_role: AsRole, db: Session, forum: Forum) -> None:
    browser, _admin = as_role(Role.ADMIN)
    refused = browser.post("/api/v1/brands", json={"slug": "initech", "name": "Initech"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert browser.post("/api/v1/brands/acme/archive").status_code == 403
    assert _brand(db, "initech") is None and _brand(db, "acme").archived_at is None  # type: ignore[union-attr]


def test_the_bulk_move_answers_how_many_moved_and_keeps_counters(
    as_role: AsRole, db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    first = qa.ask(asker, title="My phone will not charge at all")
    qa.answer(helper, first)
    second = qa.ask(asker, title="The screen flickers after the update")
    browser, _admin = as_role(Role.ADMIN)
    headers = _headers(browser)
    browser.post(
        "/api/v1/brands/acme/forums", json={"slug": "screens", "name": "Screens"}, headers=headers
    )
    moved = browser.post(
        MOVE,
        json={"thread_ids": [first.id, second.id], "forum": "screens"},
        headers=headers,
    )
    assert moved.status_code == 200 and moved.json() == {"moved": 2, "forum": "screens"}
    fresh(db)
    forums = {f.slug: f for f in db.scalars(select(Forum))}
    assert (forums["mobile"].thread_count, forums["mobile"].post_count) == (0, 0)
    assert (forums["screens"].thread_count, forums["screens"].post_count) == (2, 3)
    assert db.get(Thread, first.id).forum_id == forums["screens"].id  # type: ignore[union-attr]
    listed = browser.get(f"/api/v1/forums/{forums['screens'].id}/threads").json()
    assert {item["id"] for item in listed["items"]} == {first.id, second.id}


def test_the_routes_document_their_errors(app: FastAPI) -> None:
    schema = app.openapi()
    for method, path, _body in CALLS:
        template = path.replace("globex", "{brand_slug}").replace("routers", "{forum_slug}")
        responses = schema["paths"][template][method.lower()]["responses"]
        assert {"401", "403", "404", "422"} <= set(responses), template
        assert responses["403"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorOut"
        )


# --- the command line --------------------------------------------------------------------------


def test_brands_and_forums_from_the_command_line(cli_env: None, db: Session) -> None:
    made = runner.invoke(
        cli,
        ["brand", "create", "--slug", "globex", "--name", "Globex", "--language", "es",
         "--contact-email", "help@globex.example", "--description", "Routers"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "created brand 'globex'" in made.output
    brand = _brand(db, "globex")
    assert brand is not None and (brand.default_locale, brand.description) == ("es", "Routers")
    edited = runner.invoke(cli, ["brand", "edit", "globex", "--name", "Globex Corp"])
    assert edited.exit_code == 0 and "saved" in edited.output
    forum = runner.invoke(
        cli,
        [
            "forum",
            "create",
            "globex",
            "--slug",
            "routers",
            "--name",
            "Routers",
            "--access",
            "verified",
        ],
    )
    assert forum.exit_code == 0, forum.output
    listing = runner.invoke(cli, ["brand", "list"])
    assert "globex\tGlobex Corp\tes\t1 forums" in listing.stdout
    assert runner.invoke(cli, ["forum", "archive", "globex", "routers"]).exit_code == 0
    assert runner.invoke(cli, ["brand", "archive", "globex"]).exit_code == 0
    again = runner.invoke(cli, ["brand", "archive", "globex"])
    assert again.exit_code == 0 and "already archived" in again.output
    assert (
        "globex\tGlobex Corp\tes\t0 forums  [archived]"
        in runner.invoke(cli, ["brand", "list"]).stdout
    )
    assert runner.invoke(cli, ["brand", "unarchive", "globex"]).exit_code == 0
    fresh(db)
    brand = _brand(db, "globex")
    assert brand is not None and brand.name == "Globex Corp" and brand.archived_at is None
    routers = brand.forums[0]
    assert routers.access == ForumAccess.VERIFIED and routers.archived_at is not None
    rows = list(db.scalars(select(AuditLog).order_by(AuditLog.id)))
    assert [row.action for row in rows] == [
        "brand.created", "brand.updated", "forum.created", "forum.archived", "brand.archived",
        "brand.unarchived",
    ]  # fmt: skip
    assert all(row.actor_id is None and row.reason == "command line" for row in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["brand", "create", "--slug", "Bad Slug", "--name", "X"], "error: slug:"),
        (
            ["brand", "create", "--slug", "acme", "--name", "X"],
            "error: slug: That address is taken",
        ),
        (
            ["brand", "create", "--slug", "x1", "--name", "X", "--language", "fr"],
            "error: default_locale:",
        ),
        (["brand", "edit", "nope", "--name", "X"], "error: no brand 'nope'"),
        (["brand", "edit", "acme", "--solution-threshold", "500"], "error: solution_threshold:"),
        (["forum", "create", "acme", "--slug", "mobile", "--name", "M"], "error: slug:"),
        (
            ["forum", "create", "acme", "--slug", "tv", "--name", "TV", "--access", "vip"],
            "error: access:",
        ),
        (["forum", "archive", "acme", "nope"], "error: brand 'acme' has no forum 'nope'"),
    ],
)
def test_command_line_mistakes_are_one_line_and_change_nothing(
    cli_env: None, db: Session, forum: Forum, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    fresh(db)
    assert [b.slug for b in db.scalars(select(Brand))] == ["acme"]
    assert [f.slug for f in db.scalars(select(Forum))] == ["mobile"]
    assert db.scalars(select(AuditLog)).all() == []
