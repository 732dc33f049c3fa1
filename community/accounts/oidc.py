"""The OpenID Connect client's protocol steps, with Authlib's pieces (authorization URL, PKCE,
client authentication, ID token claims) and joserfc (signatures): discovery, the token
exchange, the ID token's checks and userinfo. No database: community.accounts.sso runs the
flow, community.accounts.sso_config keeps each brand's settings.

Every call to a provider goes through `fetch`: the URL is checked by community.core.netguard
(https only; a loopback or private address only with SSO_ALLOW_PRIVATE_ISSUERS, for tests and
private deployments) and the request is sent to the address that was checked, so a DNS answer
that changes in between cannot point it elsewhere. Answers are read up to 1 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from community.core import netguard, tls
from community.core.i18n import gettext as _

TIMEOUT = httpx.Timeout(10.0)
MAX_RESPONSE_BYTES = 1_000_000  # a discovery document, key set or token answer is far smaller
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
CLOCK_LEEWAY_SECONDS = 60


class ProviderError(Exception):
    """A provider could not be reached or answered wrongly; the message says how (for admins
    on the settings page, and for the 502 page of a sign-in)."""


# --- HTTP to the provider --------------------------------------------------------------------


def fetch(
    method: str,
    url: str,
    *,
    allow_private: bool,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to a provider's URL, checked and pinned (see the module's docstring)."""
    try:
        target = netguard.parse_url(
            url,
            missing=_("The provider gave no address."),
            credentials=_("The address must not contain a user name or password."),
        )
        addresses = netguard.checked_addresses(target, allow_private=allow_private)
    except netguard.Refused as exc:
        raise ProviderError(str(exc)) from exc
    if target.scheme != "https" and any(netguard.is_public_address(a) for a in addresses):
        raise ProviderError(_("The provider's addresses must start with https://."))
    pinned = netguard.pinned(target, addresses[0])
    try:
        with httpx.Client(verify=tls.client_context(), timeout=TIMEOUT) as client:
            request = client.build_request(
                method,
                pinned.url,
                data=data,
                headers=pinned.headers | (headers or {}) | {"accept": "application/json"},
                extensions=pinned.extensions,
            )
            response = client.send(request, stream=True)
            try:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ProviderError(_("The provider's answer is too large."))
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise ProviderError(
            _("The provider could not be reached (%(error)s).") % {"error": type(exc).__name__}
        ) from exc
    return httpx.Response(response.status_code, headers=response.headers, content=body)


def json_of(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ProviderError(
            _("The provider's %(what)s is not a JSON object (HTTP %(status)d).")
            % {"what": what, "status": response.status_code}
        )
    return document


@dataclass(frozen=True, slots=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


def discover(issuer: str, *, allow_private: bool) -> Discovery:
    """The provider's discovery document, checked: it must name exactly this issuer."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = fetch("GET", url, allow_private=allow_private)
    if response.status_code != 200:
        raise ProviderError(
            _("%(url)s answered HTTP %(status)d, not a discovery document.")
            % {"url": url, "status": response.status_code}
        )
    document = json_of(response, _("discovery document"))
    if document.get("issuer") != issuer:
        raise ProviderError(
            _("The discovery document names the issuer %(found)s, not %(issuer)s.")
            % {"found": str(document.get("issuer"))[:200], "issuer": issuer}
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise ProviderError(_("The discovery document has no %(name)s.") % {"name": name})
        endpoints[name] = value
    userinfo = document.get("userinfo_endpoint")
    return Discovery(
        issuer=issuer,
        userinfo_endpoint=userinfo if isinstance(userinfo, str) and userinfo else None,
        **endpoints,
    )


# --- the protocol's steps --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    """Our registration at a provider."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    allow_private: bool


def authorization_url(
    client: Client, endpoint: str, *, scope: str, state: str, nonce: str, verifier: str
) -> str:
    url: str = prepare_grant_uri(
        endpoint,
        client.client_id,
        "code",
        redirect_uri=client.redirect_uri,
        scope=scope,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    if not url.startswith(("https://", "http://")):
        raise ProviderError(_("The provider's sign-in address is not a web address."))
    return url


def exchange_code(client: Client, token_endpoint: str, code: str, verifier: str) -> dict[str, Any]:
    """The token answer for an authorization code (client_secret_basic, with the verifier)."""
    auth = ClientAuth(client.client_id, client.client_secret, "client_secret_basic")
    _uri, headers, _body = auth.prepare("POST", token_endpoint, {}, "")
    response = fetch(
        "POST",
        token_endpoint,
        allow_private=client.allow_private,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        headers=headers,
    )
    tokens = json_of(response, _("token answer"))
    if response.status_code != 200 or "error" in tokens:
        raise ProviderError(
            _("The provider refused the code (%(error)s).")
            % {"error": str(tokens.get("error", response.status_code))[:100]}
        )
    if not isinstance(tokens.get("id_token"), str):
        raise ProviderError(_("The provider sent no ID token."))
    return tokens


def checked_id_token(
    client: Client, jwks_uri: str, tokens: dict[str, Any], *, nonce: str, now: int
) -> dict[str, Any]:
    """The ID token's claims once its signature (the provider's published keys), issuer,
    audience, authorized party, times, nonce and access-token hash are right."""
    response = fetch("GET", jwks_uri, allow_private=client.allow_private)
    try:
        keys = KeySet.import_key_set(json_of(response, _("key set")))  # type: ignore[arg-type]
        token = jwt.decode(tokens["id_token"], keys, algorithms=ID_TOKEN_ALGORITHMS)
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": client.issuer},
                "aud": {"essential": True, "value": client.client_id},
                "sub": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            },
            params={
                "nonce": nonce,
                "client_id": client.client_id,
                "access_token": tokens.get("access_token"),
            },
        )
        claims.validate(now=now, leeway=CLOCK_LEEWAY_SECONDS)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ProviderError(
            _("The provider's ID token was refused (%(reason)s).")
            % {"reason": type(exc).__name__ + (f": {exc}" if str(exc) else "")}
        ) from exc
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise ProviderError(_("The provider's ID token has no subject."))
    return dict(claims)


def userinfo(client: Client, endpoint: str, access_token: str) -> dict[str, Any]:
    response = fetch(
        "GET",
        endpoint,
        allow_private=client.allow_private,
        headers={"authorization": f"Bearer {access_token}"},
    )
    if response.status_code != 200:
        raise ProviderError(
            _("The provider's userinfo answered HTTP %(status)d.")
            % {"status": response.status_code}
        )
    return json_of(response, _("userinfo"))
