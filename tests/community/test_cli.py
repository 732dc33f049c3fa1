"""The `community` command: migrate, create-user, seed-demo, meili status; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from community.cli import app
from community.core import migrate
from community.core.models import Brand, Forum, Role, Thread, User
from tests.conftest import fresh_database_url

runner = CliRunner()


def _count(db: Session, model: type) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_migrate_is_idempotent(cli_env: None) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output


def test_migrate_says_whether_it_created_upgraded_or_left_the_database(
    cli_env: None, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, remove = fresh_database_url(backend, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    try:
        created = runner.invoke(app, ["migrate"])
        assert created.exit_code == 0, created.output
        assert created.output.strip() == f"database created (schema version {head})"
        again = runner.invoke(app, ["migrate"])
        assert again.output.strip() == f"database is up to date (schema version {head})"
        migrate.downgrade(url, "0004")
        upgraded = runner.invoke(app, ["migrate"])
        assert upgraded.exit_code == 0, upgraded.output
        assert upgraded.output.strip() == f"database upgraded from 0004 to {head}"
        assert migrate.current_version(url) == head
    finally:
        remove()


def test_create_user_with_role(cli_env: None, db: Session) -> None:
    result = runner.invoke(
        app,
        ["create-user", "--username", "boss", "--email", "boss@example.com", "--role", "admin"],
        input="tall-orange-kettle-41\ntall-orange-kettle-41\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin 'boss'" in result.output
    db.rollback()
    user = db.scalar(select(User).where(User.username_key == "boss"))
    assert user is not None
    assert user.role == Role.ADMIN
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")


def test_create_user_errors_are_one_line_without_traceback(cli_env: None, db: Session) -> None:
    args = ["create-user", "--username", "boss", "--email", "boss@example.com"]
    first = runner.invoke(app, [*args, "--password", "tall-orange-kettle-41"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, [*args, "--password", "tall-orange-kettle-41"])
    assert again.exit_code == 1
    assert "error: username: That username is taken." in again.output
    assert "Traceback" not in again.output
    weak = runner.invoke(
        app, ["create-user", "--username", "x2", "--email", "x2@example.com", "--password", "123"]
    )
    assert weak.exit_code == 1
    assert "password:" in weak.output
    assert "Traceback" not in weak.output
    bad_role = runner.invoke(app, [*args, "--password", "a-b-c-d-e-f", "--role", "king"])
    assert bad_role.exit_code == 2  # Typer's usage error, also without a traceback
    assert "Traceback" not in bad_role.output
    assert _count(db, User) == 1


def test_unreachable_database_is_one_clear_line(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach the database")
    assert "Traceback" not in result.output


def test_seed_demo_loads_once(cli_env: None, db: Session) -> None:
    first = runner.invoke(app, ["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "loaded brand 'Acme'" in first.output
    counts = (_count(db, Brand), _count(db, Forum), _count(db, User), _count(db, Thread))
    second = runner.invoke(app, ["seed-demo"])
    assert second.exit_code == 0
    assert "already loaded" in second.output
    assert (_count(db, Brand), _count(db, Forum), _count(db, User), _count(db, Thread)) == counts


def test_meili_status_reports_the_binary(cli_env: None) -> None:
    result = runner.invoke(app, ["meili", "status"])
    assert result.exit_code == 0, result.output
    assert "binary:" in result.output
    assert "1.21.0" in result.output
    assert "managed server: not running" in result.output


def test_meili_status_with_unreachable_url(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEILI_URL", "http://127.0.0.1:1")
    result = runner.invoke(app, ["meili", "status"])
    assert result.exit_code == 1
    assert "error: Meilisearch at http://127.0.0.1:1 does not answer" in result.output
