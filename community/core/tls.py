"""One TLS context per process for outgoing HTTPS (Meilisearch, webhooks, a brand's embedding
service).

httpx builds a context for every Client it makes, even one that only ever speaks plain HTTP,
and building one reads the whole CA bundle: about 30 ms of CPU each time. A context verifies
certificates the same way however many clients and threads share it, so it is built once.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CA bundle, SSL_CERT_FILE if set)."""
    return httpx.create_ssl_context()
