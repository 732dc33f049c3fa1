"""The demo community loads, covers every role and both languages, and every page renders."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.auth import Passwords
from community.core.models import Forum, Role, Thread, User, Visibility
from community.demo import seed_demo
from community.demo_content import DEMO_PASSWORD
from tests.conftest import log_in


def test_demo_has_every_role_both_languages_and_renders(
    client: TestClient, db: Session, passwords: Passwords
) -> None:
    brand = seed_demo(db, passwords)
    db.commit()
    roles = {user.role for user in db.scalars(select(User))}
    assert roles == set(Role)
    threads = list(db.scalars(select(Thread)))
    assert {thread.locale for thread in threads} == {"en", "es"}
    assert all(thread.visibility == Visibility.VISIBLE for thread in threads)

    home = client.get("/")
    assert home.status_code == 200
    assert "Acme community" in home.text
    for forum in db.scalars(select(Forum).where(Forum.brand_id == brand.id)):
        page = client.get(f"/b/{brand.slug}/{forum.slug}")
        assert page.status_code == 200
        assert page.text.count('class="thread-row"') == forum.thread_count
    for thread in threads:
        page = client.get(f"/t/{thread.id}")
        assert page.status_code == 200
        assert page.text.count('class="card post') == 1 + thread.reply_count


def test_documented_demo_logins_work(client: TestClient, db: Session, passwords: Passwords) -> None:
    seed_demo(db, passwords)
    db.commit()
    log_in(client, "acme_admin", DEMO_PASSWORD)
    assert client.get("/admin/users").status_code == 200
    assert "@agent_lee" in client.get("/admin/users").text
