"""A brand's search settings as the service takes them: synonym lines become groups, every
number is checked before anything changes, and a save is audited and sent to the index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.errors import FormErrors
from community.core.indexing import BRAND_SEARCH_SETTINGS
from community.core.models import Forum, Role, User
from community.core.outbox import OutboxEvent
from kb.search_settings import SearchSettingsForm, do_save_search_settings, synonym_groups

VALID = SearchSettingsForm(
    synonyms="WiFi, wlan, wireless\nsim,esim\nalone\n , ,\n",
    solution_threshold="40",
    article_threshold="70.5",
    review_period_days="90",
)


def test_synonym_lines_become_groups_of_two_words_or_more() -> None:
    assert synonym_groups(VALID.synonyms) == [["wifi", "wlan", "wireless"], ["sim", "esim"]]
    assert synonym_groups("") == []
    long_line = ", ".join(f"w{index}" + "x" * 50 for index in range(30))
    (group,) = synonym_groups(long_line)
    assert len(group) == 20 and all(len(word) == 40 for word in group)
    assert len(synonym_groups("a, b\n" * 300)) == 200


def test_saving_changes_the_brand_audits_and_tells_the_index(
    db: Session, forum: Forum, make_user: Callable[..., User]
) -> None:
    admin, brand = make_user("ada", role=Role.ADMIN), forum.brand
    do_save_search_settings(db, admin, brand, VALID, ip="192.0.2.1")
    db.commit()
    db.refresh(brand)
    assert brand.synonyms == [["wifi", "wlan", "wireless"], ["sim", "esim"]]
    assert (brand.solution_threshold, brand.article_threshold) == (40, 70.5)
    assert brand.review_period_days == 90
    (entry,) = db.scalars(select(AuditLog).where(AuditLog.action == "brand.search_settings"))
    assert entry.after == {"synonyms": brand.synonyms, "solution_threshold": 40}
    events = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == BRAND_SEARCH_SETTINGS))
    assert [event.payload for event in events] == [{"brand_id": brand.id}]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("solution_threshold", "", "Enter a number."),
        ("solution_threshold", "1e2", "Enter a number."),
        ("article_threshold", "100.5", "Enter a number from 0 to 100."),
        ("review_period_days", "6", "Enter a number from 7 to 3650."),
    ],
)
def test_a_bad_number_changes_nothing(
    db: Session, forum: Forum, make_user: Callable[..., User], field: str, value: str, message: str
) -> None:
    admin, brand = make_user("ada", role=Role.ADMIN), forum.brand
    before = (brand.synonyms, brand.solution_threshold, brand.review_period_days)
    form = replace(VALID, **{field: value})
    with pytest.raises(FormErrors) as refused:
        do_save_search_settings(db, admin, brand, form)
    assert refused.value.errors == {field: message}
    assert (brand.synonyms, brand.solution_threshold, brand.review_period_days) == before
    assert db.scalars(select(AuditLog)).all() == []


def test_every_bad_number_is_named_at_once(
    db: Session, forum: Forum, make_user: Callable[..., User]
) -> None:
    form = SearchSettingsForm(solution_threshold="x", article_threshold="", review_period_days="0")
    with pytest.raises(FormErrors) as refused:
        do_save_search_settings(db, make_user("ada", role=Role.ADMIN), forum.brand, form)
    assert set(refused.value.errors) == {
        "solution_threshold",
        "article_threshold",
        "review_period_days",
    }
