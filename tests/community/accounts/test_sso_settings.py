"""A brand's sign-in settings (page and API) on both databases: its admins only, the issuer
checked against its discovery document, the client secret sealed and never shown, password
sign-in off only with a provider on, every change audited without the secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.accounts import sso_config
from community.core.account_models import SsoProvider
from community.core.audit import AuditLog
from community.core.models import Brand, Forum, User
from community.core.secretbox import unseal
from community.core.settings import Settings
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import csrf_token, fresh, log_in, make_settings
from tests.sso_provider import SsoSetup, TestProvider, sso_trip

PAGE = "/admin/brands/{}/sign-in"
API = "/api/v1/brands/{}/sign-in"
SECRET = "s3cr3t-from-the-provider-0123456789"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: object) -> Settings:
    url = meili_server.url  # type: ignore[attr-defined]
    return make_settings(tmp_path, database_url, url, sso_allow_private_issuers=True)


def brand_admin(
    db: Session, make_user: Callable[..., User], client: TestClient, brand_id: int, name: str
) -> User:
    user = make_user(name)
    db.add(StaffGrant(user_id=user.id, brand_id=brand_id, role=BrandRole.BRAND_ADMIN))
    db.commit()
    log_in(client, user.username)
    return user


def acme(db: Session, forum: Forum) -> Brand:
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None
    return brand


def provider_json(oidc: TestProvider, **changes: object) -> dict[str, object]:
    return {
        "issuer": oidc.issuer, "client_id": "community", "client_secret": SECRET,
        "scopes": "openid email profile", "display_name_claim": "name",
        "verified_customer_claim": "", "verified_customer_value": "",
        "button_label": "Acme ID", "enabled": True,
    } | changes  # fmt: skip


def test_a_brand_admin_sets_up_sign_in_through_the_api_and_the_secret_never_comes_back(
    client: TestClient, db: Session, forum: Forum, make_user: Callable[..., User],
    oidc: TestProvider, settings: Settings,
) -> None:  # fmt: skip
    brand = acme(db, forum)
    brand_admin(db, make_user, client, brand.id, "acme_admin")
    saved = client.put(
        API.format("acme"),
        json={"password_sign_in": False, "provider": provider_json(oidc)},
        headers={"x-csrf-token": csrf_token(client, "/")},
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["password_sign_in"] is False and body["provider"]["client_secret_set"] is True
    assert body["redirect_uri"] == "http://127.0.0.1:8000/b/acme/sso/callback"
    assert SECRET not in saved.text
    fresh(db)
    row = db.scalar(select(SsoProvider).where(SsoProvider.brand_id == brand.id))
    assert row is not None and SECRET not in row.client_secret
    assert unseal(settings.effective_secret_key, row.client_secret) == SECRET
    audit = db.scalar(select(AuditLog).where(AuditLog.action == "brand.sign_in_updated"))
    assert audit is not None and SECRET not in str(audit.before) + str(audit.after)
    assert audit.after["client_secret_changed"] is True  # type: ignore[index]

    # Reading it back, and the page: no secret; saving without one keeps it.
    read = client.get(API.format("acme"))
    assert read.status_code == 200 and SECRET not in read.text
    page = client.get(PAGE.format("acme"))
    assert page.status_code == 200 and SECRET not in page.text
    assert "A secret is saved; leave this empty to keep it." in page.text
    assert "http://127.0.0.1:8000/b/acme/sso/callback" in page.text
    kept = client.put(
        API.format("acme"),
        json={"provider": provider_json(oidc, client_secret=None, button_label="Acme account")},
        headers={"x-csrf-token": csrf_token(client, "/")},
    )
    assert kept.status_code == 200 and kept.json()["provider"]["button_label"] == "Acme account"
    fresh(db)
    assert unseal(settings.effective_secret_key, row.client_secret) == SECRET


def test_the_settings_page_saves_and_refuses_with_the_fields_marked(
    client: TestClient, db: Session, forum: Forum, make_user: Callable[..., User],
    oidc: TestProvider,
) -> None:  # fmt: skip
    brand = acme(db, forum)
    brand_admin(db, make_user, client, brand.id, "page_admin")
    assert f'href="{PAGE.format("acme")}"' in client.get("/admin/brands/acme").text

    def save(**fields: str) -> object:
        data = {"csrf_token": csrf_token(client, PAGE.format("acme")), "password_sign_in": "1",
                "require_verified_email": "1", "scopes": "openid email profile",
                "display_name_claim": "name", "enabled": "1"} | fields  # fmt: skip
        return client.post(PAGE.format("acme"), data=data, follow_redirects=False)

    # Password sign-in off without a provider: refused, nothing saved.
    off = save(password_sign_in="")
    assert off.status_code == 422  # type: ignore[attr-defined]
    assert "only be turned off while single sign-on" in off.text  # type: ignore[attr-defined]
    # A typo in the issuer: its discovery document is not there.
    typo = save(issuer=oidc.issuer + "/nope", client_id="community", client_secret=SECRET)
    assert typo.status_code == 422  # type: ignore[attr-defined]
    assert "This issuer cannot be used" in typo.text  # type: ignore[attr-defined]
    assert 'aria-invalid="true"' in typo.text and SECRET not in typo.text  # type: ignore[attr-defined]
    no_openid = save(
        issuer=oidc.issuer, client_id="community", client_secret=SECRET, scopes="email"
    )
    assert no_openid.status_code == 422  # type: ignore[attr-defined]
    assert "must include openid" in no_openid.text  # type: ignore[attr-defined]
    fresh(db)
    assert sso_config.provider_of(db, brand.id) is None
    assert db.get(Brand, brand.id).password_sign_in is True  # type: ignore[union-attr]

    ok = save(issuer=oidc.issuer, client_id="community", client_secret=SECRET,
              button_label="Acme ID", require_staff_two_factor="1")  # fmt: skip
    assert ok.status_code == 303  # type: ignore[attr-defined]
    fresh(db)
    saved = db.get(Brand, brand.id)
    assert saved is not None and saved.require_staff_two_factor is True
    provider = sso_config.provider_of(db, brand.id)
    assert provider is not None and provider.button_label == "Acme ID" and provider.enabled


def test_a_public_issuer_needs_https_and_private_ones_the_site_setting(
    db: Session, forum: Forum, make_user: Callable[..., User], oidc: TestProvider,
    settings: Settings,
) -> None:  # fmt: skip
    from community.core.errors import FormErrors
    from community.core.models import Role
    from community.core.staff import load_brand_roles

    admin = load_brand_roles(db, make_user("site_admin", role=Role.ADMIN))
    brand = acme(db, forum)
    strict = settings.model_copy(update={"sso_allow_private_issuers": False})
    data = sso_config.SignInSettingsIn.model_validate({"provider": provider_json(oidc)})
    with pytest.raises(FormErrors) as refused:
        sso_config.do_save_sign_in(db, strict, admin, brand, data)
    assert "private, loopback or reserved" in refused.value.errors["issuer"]
    db.rollback()
    plain = sso_config.SignInSettingsIn.model_validate(
        {"provider": provider_json(oidc, issuer="http://example.com")}
    )
    with pytest.raises(FormErrors):
        sso_config.do_save_sign_in(db, strict, admin, brand, plain)
    db.rollback()
    assert sso_config.provider_of(db, brand.id) is None


def test_another_brands_admin_can_neither_read_nor_change_the_settings(
    client: TestClient, db: Session, forum: Forum, make_user: Callable[..., User],
    acme_sso: SsoSetup, settings: Settings,
) -> None:  # fmt: skip
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    brand_admin(db, make_user, client, other.id, "globex_admin")
    assert client.get(PAGE.format("acme")).status_code == 403
    assert client.get(API.format("acme")).status_code == 403
    token = csrf_token(client, "/")
    changed = client.put(
        API.format("acme"), json={"password_sign_in": False}, headers={"x-csrf-token": token}
    )
    assert changed.status_code == 403
    posted = client.post(
        PAGE.format("acme"), data={"csrf_token": token, "issuer": "https://evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert posted.status_code == 403
    fresh(db)
    row = sso_config.provider_of(db, acme_sso.brand.id)
    assert row is not None and row.issuer == acme_sso.oidc.issuer
    assert db.get(Brand, acme_sso.brand.id).password_sign_in is True  # type: ignore[union-attr]
    # Its own brand's settings it may read: no provider there.
    assert client.get(API.format("globex")).json()["provider"] is None


def test_members_never_see_the_secret_on_the_way_in(client: TestClient, acme_sso: SsoSetup) -> None:
    acme_sso.oidc.sign_in_as(sub="x-1", email="x@example.org", email_verified=False)
    pages = [
        client.get("/login").text,
        sso_trip(client).text,
        client.get("/b/acme/sso/choose").text,
    ]
    assert all(acme_sso.client.client_secret not in page for page in pages)


def test_only_a_site_admin_lets_a_providers_addresses_link_accounts(
    db: Session, forum: Forum, make_user: Callable[..., User],
    make_client: Callable[[], TestClient], oidc: TestProvider,
) -> None:  # fmt: skip
    """Accounts are shared by every brand and a brand's admins run its provider: if they could
    let its vouched addresses link accounts, they could sign in as any member whose address
    they know. A brand admin's try is a 403 and changes nothing; their form keeps the setting;
    a site admin turns it on."""
    from community.core.models import Role

    brand = acme(db, forum)
    brand_browser = make_client()
    brand_admin(db, make_user, brand_browser, brand.id, "acme_admin")
    refused = brand_browser.put(
        API.format("acme"),
        json={"provider": provider_json(oidc, link_by_email=True)},
        headers={"x-csrf-token": csrf_token(brand_browser, "/")},
    )
    assert refused.status_code == 403
    fresh(db)
    assert db.scalar(select(SsoProvider)) is None
    made = brand_browser.put(
        API.format("acme"),
        json={"provider": provider_json(oidc)},
        headers={"x-csrf-token": csrf_token(brand_browser, "/")},
    )
    assert made.status_code == 200 and made.json()["provider"]["link_by_email"] is False
    assert (
        "Addresses it vouches for link accounts" not in brand_browser.get(PAGE.format("acme")).text
    )

    site_browser = make_client()
    make_user("root_admin", role=Role.ADMIN)
    log_in(site_browser, "root_admin")
    assert "Addresses it vouches for link accounts" in site_browser.get(PAGE.format("acme")).text
    on = site_browser.put(
        API.format("acme"),
        json={"provider": provider_json(oidc, client_secret=None, link_by_email=True)},
        headers={"x-csrf-token": csrf_token(site_browser, "/")},
    )
    assert on.status_code == 200 and on.json()["provider"]["link_by_email"] is True
    # The brand admin's form (no such box) saves other fields and keeps it on.
    page = brand_browser.get(PAGE.format("acme"))
    token = csrf_token(brand_browser, PAGE.format("acme"))
    saved = brand_browser.post(
        PAGE.format("acme"),
        data={
            "password_sign_in": "1", "require_verified_email": "1", "issuer": oidc.issuer,
            "client_id": "community", "scopes": "openid email profile",
            "display_name_claim": "name", "button_label": "Acme account", "enabled": "1",
            "csrf_token": token,
        },
        follow_redirects=False,
    )  # fmt: skip
    assert page.status_code == 200 and saved.status_code == 303, saved.text[:300]
    fresh(db)
    row = db.scalar(select(SsoProvider))
    assert row is not None and row.link_by_email is True and row.button_label == "Acme account"
