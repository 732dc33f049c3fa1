"""A real OpenID Connect provider for the single sign-on tests, written with Authlib's server
side on Flask: discovery, JWKS, authorize (Authorization Code with PKCE required and a nonce
required), token (client secret checked, codes single use), userinfo (bearer tokens).
ID tokens are RS256, signed with a key made at start.

The tests set who signs in next (`provider.sign_in_as(claims)`); the browser test turns on a
small HTML login form at /authorize instead (`provider.login_form = True`, people in
`provider.people`). A test may make the provider misbehave on purpose (`provider.tamper`:
claims that overwrite the ID token's own, such as another audience or issuer) to prove our
client refuses such a token. Storage is in memory; one provider serves a whole test session,
so every test registers a client of its own (`provider.new_client(redirect_uri)`).
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo, UserInfoEndpoint
from fastapi.testclient import TestClient
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from community.accounts import sso_config
from community.core.account_models import SsoProvider
from community.core.models import Brand, Forum
from community.core.secretbox import seal
from community.core.settings import Settings

KEY_ID = "test-key-1"
CODE_LIFETIME = 60


@dataclass
class Person:
    """Someone who signs in at the provider: the claims it vouches for (`sub` among them)."""

    claims: dict[str, Any]

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    client_metadata: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile", "groups"}
        return " ".join(each for each in (scope or "").split() if each in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


@dataclass
class Token:
    access_token: str
    scope: str
    client: Client
    person: Person
    expires_at: float

    def is_expired(self) -> bool:
        return time.time() > self.expires_at

    def is_revoked(self) -> bool:
        return False

    def get_scope(self) -> str:
        return self.scope

    def get_client(self) -> Client:
        return self.client

    def get_user(self) -> Person:
        return self.person


class TestProvider:
    """The provider's state and its Flask app (see the module's docstring)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig"})
        self.issuer = ""  # set once the server listens
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, Token] = {}
        self.next_person: Person | None = None
        self.login_form = False
        self.people: dict[str, Person] = {}  # login form: user name -> person
        self.tamper: dict[str, Any] = {}
        self.token_requests = 0
        self.app = self._build_app()

    # --- what tests call ---------------------------------------------------------------------

    def new_client(self, redirect_uri: str) -> Client:
        client = Client(
            client_id=f"client-{secrets.token_hex(6)}",
            client_secret=secrets.token_urlsafe(24),
            redirect_uris=[redirect_uri],
        )
        self.clients[client.client_id] = client
        return client

    def reset(self) -> None:
        """Forget what the last test asked for (the provider lives for the whole session)."""
        self.next_person, self.login_form, self.people, self.tamper = None, False, {}, {}

    def sign_in_as(self, **claims: Any) -> Person:
        """Who the next /authorize approves at once (claims as the provider vouches for them)."""
        person = Person(claims=claims)
        self.next_person = person
        return person

    # --- Authlib's server --------------------------------------------------------------------

    def _build_app(self) -> Flask:
        provider = self
        app = Flask("test_oidc_provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 600}

        def save_token(token: dict[str, Any], oauth_request: Any) -> None:
            provider.tokens[token["access_token"]] = Token(
                access_token=token["access_token"],
                scope=token.get("scope", ""),
                client=oauth_request.client,
                person=oauth_request.user,
                expires_at=time.time() + int(token.get("expires_in", 600)),
            )

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
            ]

            def save_authorization_code(self, code: str, oauth_request: Any) -> None:
                payload = oauth_request.payload
                provider.codes[code] = AuthorizationCode(
                    code=code,
                    client_id=oauth_request.client.client_id,
                    redirect_uri=payload.redirect_uri,
                    scope=payload.scope,
                    person=oauth_request.user,
                    nonce=payload.data.get("nonce"),
                    code_challenge=payload.data.get("code_challenge"),
                    code_challenge_method=payload.data.get("code_challenge_method"),
                    auth_time=int(time.time()),
                    expires_at=time.time() + CODE_LIFETIME,
                )

            def query_authorization_code(
                self, code: str, client: Client
            ) -> AuthorizationCode | None:
                item = provider.codes.get(code)
                if item and item.client_id == client.client_id and item.expires_at > time.time():
                    return item
                return None

            def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
                provider.codes.pop(authorization_code.code, None)  # a code is used once

            def authenticate_user(self, authorization_code: AuthorizationCode) -> Person:
                return authorization_code.person

        class OpenID(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, oauth_request: Any) -> bool:
                return any(item.nonce == nonce for item in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": KEY_ID}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.client_id]}

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                return UserInfo(dict(user.claims) | provider.tamper)

        class UserInfoFromClaims(UserInfoEndpoint):  # type: ignore[misc]
            def get_issuer(self) -> str:
                return provider.issuer

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                return UserInfo(dict(user.claims))

            def resolve_private_key(self) -> RSAKey:
                return provider.key

        class Bearer(BearerTokenValidator):  # type: ignore[misc]
            def authenticate_token(self, token_string: str) -> Token | None:
                return provider.tokens.get(token_string)

        protector = ResourceProtector()
        protector.register_token_validator(Bearer())
        server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
        server.register_endpoint(UserInfoFromClaims(resource_protector=protector))

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            return jsonify(
                issuer=provider.issuer,
                authorization_endpoint=f"{provider.issuer}/authorize",
                token_endpoint=f"{provider.issuer}/token",
                userinfo_endpoint=f"{provider.issuer}/userinfo",
                jwks_uri=f"{provider.issuer}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                scopes_supported=["openid", "email", "profile", "groups"],
                token_endpoint_auth_methods_supported=["client_secret_basic"],
            )

        @app.get("/jwks")
        def jwks() -> Response:
            return jsonify(keys=[provider.key.as_dict(private=False)])

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            person = provider._person_for_authorize()
            if person is None:
                return provider._login_page()
            return server.create_authorization_response(grant_user=person)

        @app.post("/token")
        def token() -> Any:
            provider.token_requests += 1
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo() -> Any:
            return server.create_endpoint_response("userinfo")

        return app

    def _person_for_authorize(self) -> Person | None:
        if not self.login_form:
            person, self.next_person = self.next_person, None
            return person
        if request.method == "POST":
            return self.people.get(request.form.get("username", ""))
        return None

    def _login_page(self) -> Response:
        """The provider's own sign-in page (the browser test); it posts back to /authorize
        with the same query, so Authlib validates the request again."""
        failed = request.method == "POST"
        body = f"""<!doctype html><html lang="en"><head><title>Acme ID</title></head><body>
<main><h1>Acme ID</h1>{"<p role='alert'>Unknown user.</p>" if failed else ""}
<form method="post" action="/authorize?{html.escape(request.query_string.decode())}">
<label for="u">Acme user name</label> <input id="u" name="username" autocomplete="off">
<label for="p">Acme password</label> <input id="p" name="password" type="password">
<button type="submit">Continue to the community</button></form></main></body></html>"""
        return Response(body, status=401 if failed else 200, mimetype="text/html")


@dataclass
class RunningProvider:
    provider: TestProvider
    server: BaseWSGIServer
    thread: threading.Thread


def start_provider() -> RunningProvider:
    provider = TestProvider()
    server = make_server("127.0.0.1", 0, provider.app, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    return RunningProvider(provider=provider, server=server, thread=thread)


def serve_provider() -> Iterator[TestProvider]:
    """The body of a session fixture: the provider for the session, stopped at its end."""
    running = start_provider()
    try:
        yield running.provider
    finally:
        running.server.shutdown()
        running.thread.join(timeout=5)


# --- fixtures and helpers for the tests ------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[TestProvider]:
    yield from serve_provider()


@pytest.fixture
def oidc(oidc_provider: TestProvider) -> Iterator[TestProvider]:
    oidc_provider.reset()
    yield oidc_provider
    oidc_provider.reset()


@dataclass
class SsoSetup:
    brand: Brand
    row: SsoProvider
    client: Client
    oidc: TestProvider


def add_provider(
    db: Session, settings: Settings, brand: Brand, oidc: TestProvider, **fields: Any
) -> SsoSetup:
    """The brand's provider row, registered at the test provider (as its admin would)."""
    client = oidc.new_client(sso_config.redirect_uri(settings, brand))
    row = SsoProvider(
        brand_id=brand.id,
        issuer=oidc.issuer,
        client_id=client.client_id,
        client_secret=seal(settings.effective_secret_key, client.client_secret),
        scopes="openid email profile",
        display_name_claim="name",
        button_label="Acme ID",
        **fields,
    )
    db.add(row)
    db.commit()
    return SsoSetup(brand=brand, row=row, client=client, oidc=oidc)


@pytest.fixture
def acme_sso(db: Session, forum: Forum, settings: Settings, oidc: TestProvider) -> SsoSetup:
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None
    return add_provider(db, settings, brand, oidc)


def to_provider(
    client: TestClient,
    *,
    brand_slug: str = "acme",
    next_path: str = "/",
    tamper_url: Callable[[str], str] | None = None,
) -> str:
    """Start a sign-in and let the provider answer: the callback path and query it sends the
    browser back with (not yet followed)."""
    start = client.get(
        f"/b/{brand_slug}/sso/start", params={"next": next_path}, follow_redirects=False
    )
    assert start.status_code == 302, start.text[:300]
    url = start.headers["location"]
    if tamper_url is not None:
        url = tamper_url(url)
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def sso_trip(client: TestClient, **options: Any) -> httpx.Response:
    """A whole trip: start, the provider, and the callback (its response, not followed)."""
    response: httpx.Response = client.get(to_provider(client, **options), follow_redirects=False)
    return response
