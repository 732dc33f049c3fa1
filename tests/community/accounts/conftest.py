"""Fixtures of the account tests: the single sign-on tests' real OpenID Connect provider
(tests/sso_provider.py), its per-test state, and a brand with it set up."""

from tests.sso_provider import acme_sso, oidc, oidc_provider

__all__ = ["acme_sso", "oidc", "oidc_provider"]
