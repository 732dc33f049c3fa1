"""Outgoing HTTPS shares one verifying TLS context per process (community.core.tls)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from community.core import tls
from community.core.settings import Settings
from kb.embeddings.remote import HttpEmbedder, HttpEmbedderConfig
from kb.search import SearchEngine


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    context = tls.client_context()
    assert context is tls.client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # The CA bundle is loaded: a context with no roots would refuse every server.
    assert context.cert_store_stats()["x509_ca"] > 50


def test_clients_reuse_it_instead_of_reading_the_ca_bundle_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls.client_context()
    bundles_read: list[object] = []
    read = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        bundles_read.append(args or kwargs)
        read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    SearchEngine(settings)
    SearchEngine(settings, writes=False)
    HttpEmbedder(HttpEmbedderConfig(url="https://embed.example.com/v1", dimensions=8))
    assert bundles_read == []
    # The spy sees what it should: a client with a context of its own reads the bundle.
    with httpx.Client():
        pass
    assert len(bundles_read) == 1
