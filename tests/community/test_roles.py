"""Roles: the admin page and API are for admins; changes are audited; nobody changes their own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.models import Role, User
from tests.conftest import csrf_token, fresh

RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 303), (Role.MEMBER, 403), (Role.MODERATOR, 403), (Role.AGENT, 403), (Role.ADMIN, 200)],
)
def test_admin_page_role_guard(as_role: RoleClient, role: Role | None, status: int) -> None:
    test_client, _user = as_role(role)
    response = test_client.get("/admin/users", follow_redirects=False)
    assert response.status_code == status
    if role is None:
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), (Role.MEMBER, 403), (Role.MODERATOR, 403), (Role.AGENT, 403), (Role.ADMIN, 200)],
)
def test_role_api_guard(
    as_role: RoleClient,
    make_user: Callable[..., User],
    db: Session,
    role: Role | None,
    status: int,
) -> None:
    test_client, _user = as_role(role)
    target = make_user("target")
    response = test_client.put(
        f"/api/v1/users/{target.id}/role",
        json={"role": "admin"},
        headers={"X-CSRF-Token": csrf_token(test_client, "/")},
    )
    assert response.status_code == status
    fresh(db)
    expected = Role.ADMIN if status == 200 else Role.MEMBER
    assert db.get(User, target.id).role == expected  # type: ignore[union-attr]


def test_admin_changes_a_role_with_a_plain_form_and_it_is_audited(
    as_role: RoleClient, make_user: Callable[..., User], db: Session
) -> None:
    admin_client, admin = as_role(Role.ADMIN)
    target = make_user("lee")
    response = admin_client.post(
        f"/admin/users/{target.id}/role",
        data={"role": "agent", "csrf_token": csrf_token(admin_client, "/admin/users")},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "lee is now Agent." in response.text
    fresh(db)
    assert db.get(User, target.id).role == Role.AGENT  # type: ignore[union-attr]
    entries = list(db.scalars(select(AuditLog)))
    assert len(entries) == 1
    entry = entries[0]
    assert admin is not None
    assert (entry.actor_id, entry.action, entry.target_id) == (
        admin.id,
        "user.role_changed",
        str(target.id),
    )
    assert entry.before == {"role": "member"}
    assert entry.after == {"role": "agent"}


def test_htmx_role_change_returns_only_the_row(
    as_role: RoleClient, make_user: Callable[..., User]
) -> None:
    admin_client, _admin = as_role(Role.ADMIN)
    target = make_user("lee")
    response = admin_client.post(
        f"/admin/users/{target.id}/role",
        data={"role": "moderator"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_token(admin_client, "/admin/users")},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="user-{target.id}">')
    assert "<html" not in response.text
    assert 'value="moderator" selected' in response.text


def test_admin_cannot_change_own_role(as_role: RoleClient, db: Session) -> None:
    admin_client, admin = as_role(Role.ADMIN)
    assert admin is not None
    response = admin_client.put(
        f"/api/v1/users/{admin.id}/role",
        json={"role": "member"},
        headers={"X-CSRF-Token": csrf_token(admin_client, "/")},
    )
    assert response.status_code == 403
    fresh(db)
    assert db.get(User, admin.id).role == Role.ADMIN  # type: ignore[union-attr]
    assert db.scalars(select(AuditLog)).first() is None


def test_bad_role_values_are_refused(
    as_role: RoleClient, make_user: Callable[..., User], db: Session
) -> None:
    admin_client, _admin = as_role(Role.ADMIN)
    target = make_user("lee")
    token = csrf_token(admin_client, "/")
    for body in ({"role": "superuser"}, {"role": "admin", "extra": 1}, {}):
        response = admin_client.put(
            f"/api/v1/users/{target.id}/role", json=body, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 422, body
    form = admin_client.post(
        f"/admin/users/{target.id}/role", data={"role": "root", "csrf_token": token}
    )
    assert form.status_code == 422
    missing = admin_client.put(
        "/api/v1/users/999999/role", json={"role": "agent"}, headers={"X-CSRF-Token": token}
    )
    assert missing.status_code == 404
    fresh(db)
    assert db.get(User, target.id).role == Role.MEMBER  # type: ignore[union-attr]


def test_admin_user_search(as_role: RoleClient, make_user: Callable[..., User]) -> None:
    admin_client, _admin = as_role(Role.ADMIN)
    make_user("carlos")
    make_user("lucia")
    page = admin_client.get("/admin/users", params={"q": "carl"})
    assert "@carlos" in page.text
    assert "@lucia" not in page.text
    fragment = admin_client.get("/admin/users", params={"q": "luc"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div class="card table-wrap" id="user-table">')
    assert "@lucia" in fragment.text
    assert "@carlos" not in fragment.text
    assert fragment.headers["vary"].count("HX-Request") == 1
