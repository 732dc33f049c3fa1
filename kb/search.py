"""Meilisearch: one KB index and one community index per brand, their settings, writes that
wait for and check their task, safe filters, and a circuit breaker so an outage costs no time.

Only public content is ever indexed (live KB entries, visible threads), so no query can leak
hidden, pending or deleted content whatever filter it uses. Threads of restricted forums are
indexed with their forum's access level, and every search is filtered by what its reader may
read (kb.search_access). Filter values from users are always quoted and escaped, never
interpolated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import meilisearch
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchError
from meilisearch.errors import MeilisearchTimeoutError as MeiliTimeout
from meilisearch.models.task import TaskInfo

from community.core import meili, tls
from community.core.settings import Settings
from kb.search_queries import STOP_WORDS, FederatedQuery, Semantic, quote

logger = logging.getLogger(__name__)

TASK_TIMEOUT_MS = 30_000
BREAKER_SECONDS = 10.0
LOCALES = {"en": "eng", "es": "spa"}

RANKING_RULES = [
    "words",
    "typo",
    "proximity",
    "attribute",
    "sort",
    "exactness",
    "usefulness:desc",
]
LOCALIZED_ATTRIBUTES = [
    {"attributePatterns": ["*_en"], "locales": ["eng"]},
    {"attributePatterns": ["*_es"], "locales": ["spa"]},
]
# Word proximity counted per attribute, not per word pair: indexing takes about half the time
# (measured: 10,290 threads in 8.0 s instead of 14.8 s) and the relevance suite keeps its scores.
PROXIMITY = "byAttribute"
KB_SETTINGS: dict[str, Any] = {
    "searchableAttributes": [
        "title_en", "title_es", "tags", "summary_en", "summary_es", "body_en", "body_es",
    ],
    "filterableAttributes": [
        "id", "brand", "forum", "type", "tags", "locale", "access", "brand_archived",
    ],
    "sortableAttributes": ["usefulness", "updated_at"],
    "rankingRules": RANKING_RULES,
    "localizedAttributes": LOCALIZED_ATTRIBUTES,
    "stopWords": STOP_WORDS,
    "faceting": {"maxValuesPerFacet": 50},
    "pagination": {"maxTotalHits": 1000},
    "proximityPrecision": PROXIMITY,
}  # fmt: skip
THREAD_SETTINGS: dict[str, Any] = {
    "searchableAttributes": [
        "title_en", "title_es", "tags", "question_en", "question_es", "answers_en", "answers_es",
    ],
    "filterableAttributes": [
        "id", "brand", "forum", "kind", "tags", "status", "locale", "solved", "reply_count",
        "duplicate_of", "access", "brand_archived",
    ],
    "sortableAttributes": ["usefulness", "created_at", "last_activity_at", "score"],
    "rankingRules": RANKING_RULES,
    "localizedAttributes": LOCALIZED_ATTRIBUTES,
    "stopWords": STOP_WORDS,
    "faceting": {"maxValuesPerFacet": 50},
    "pagination": {"maxTotalHits": 1000},
    "proximityPrecision": PROXIMITY,
}  # fmt: skip


class SearchUnavailable(RuntimeError):
    """Meilisearch cannot be reached or refused the work; callers fall back or retry later."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def synonym_map(groups: Iterable[Sequence[str]]) -> dict[str, list[str]]:
    """Meilisearch wants, for each word, the words it may be replaced with."""
    mapping: dict[str, set[str]] = {}
    for group in groups:
        words = sorted({word.strip().lower() for word in group if word.strip()})
        for word in words:
            mapping.setdefault(word, set()).update(other for other in words if other != word)
    return {word: sorted(others) for word, others in mapping.items() if others}


def _embedder_refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and (
        "invalid_search_embedder" in response.text
        or "invalid_multi_search_embedder" in response.text
        or "invalid_search_hybrid_query" in response.text
        or "invalid_search_vector" in response.text
        or "invalid_multi_search_query_vector" in response.text
    )


@dataclass
class SearchResult:
    hits: list[dict[str, Any]]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    page: int = 1
    total_pages: int = 1
    degraded: bool = False


class SearchEngine:
    """Meilisearch for one site. `writes=False` (the web process) holds no key that can change
    an index: searches use a search-only key, MEILI_SEARCH_KEY or one this site keeps on the
    server for its own indexes (created with the master key on first use). Writes use
    MEILI_WRITE_KEY when set (`community search keys`), else the master key."""

    def __init__(self, settings: Settings, *, writes: bool = True) -> None:
        self.prefix = settings.meili_index_prefix
        self._master_key = settings.meili_master_key
        url, write_key = settings.meili_url, settings.meili_write_key or self._master_key
        self._client = meilisearch.Client(url, write_key, timeout=5) if url and writes else None
        # Searches go through one kept-alive HTTP client (meilisearch-python opens a connection
        # per call). Uncompressed on purpose: compressed chunked replies on a kept-alive
        # connection stall on delayed ACKs (~40 ms per search).
        self._http = (
            httpx.Client(
                base_url=url.rstrip("/"),
                headers={"Accept-Encoding": "identity"},
                timeout=httpx.Timeout(5.0, connect=1.0),
                verify=tls.client_context(),
            )
            if url
            else None
        )
        self._search_key = settings.meili_search_key
        # Semantic search's model for brands without their own choice (kb.vectors).
        self.default_model = settings.search_model
        self._open_until = 0.0
        self._lock = threading.Lock()

    # --- names ---------------------------------------------------------------------------------

    def kb_index(self, brand_slug: str) -> str:
        return f"{self.prefix}kb_{brand_slug}"

    def threads_index(self, brand_slug: str) -> str:
        return f"{self.prefix}threads_{brand_slug}"

    # --- health --------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the breaker is open (recent failure) or when no server is configured."""
        return self._http is not None and time.monotonic() >= self._open_until

    def search_key(self) -> str:
        """The key searches are sent with: never the master key."""
        if self._search_key is None:
            self._search_key = self._site_search_key()
        return self._search_key

    def _site_search_key(self) -> str:
        """This site's search-only key for its own indexes, created once on the server with the
        master key (meili.find_or_create_site_key: every process finds the same key)."""
        if self._http is None or not self._master_key:
            raise SearchUnavailable("no search key: set MEILI_SEARCH_KEY or MEILI_MASTER_KEY")
        try:
            return meili.find_or_create_site_key(
                self._http, self._master_key, self.prefix, meili.SEARCH_KEY
            )
        except httpx.HTTPError as exc:
            raise self._trip(exc) from exc
        except meili.KeyRequestFailed as exc:
            raise SearchUnavailable(f"could not get the search key: {exc}") from exc

    def _trip(self, error: Exception) -> SearchUnavailable:
        with self._lock:
            self._open_until = time.monotonic() + BREAKER_SECONDS
        logger.warning("search unavailable: %s", error)
        return SearchUnavailable(str(error))

    def reset_breaker(self) -> None:
        with self._lock:
            self._open_until = 0.0

    def client(self) -> meilisearch.Client:
        if self._client is None:
            raise SearchUnavailable("MEILI_URL is not configured")
        return self._client

    # --- writes (the worker and reindexing) ------------------------------------------------------

    def wait(self, task_uid: int) -> None:
        try:
            task = meili.wait_for_task(self.client(), task_uid, timeout_ms=TASK_TIMEOUT_MS)
        except (MeilisearchCommunicationError, MeiliTimeout) as exc:
            raise self._trip(exc) from exc
        if task.status != "succeeded":
            code = task.error.get("code") if isinstance(task.error, dict) else None
            raise SearchUnavailable(
                f"Meilisearch task {task_uid} {task.status}: {task.error}", code=code
            )

    def _run(self, call: Any) -> int:
        try:
            task = call()
        except MeilisearchApiError as exc:
            raise SearchUnavailable(f"Meilisearch refused: {exc}") from exc
        except (MeilisearchCommunicationError, MeiliTimeout, MeilisearchError) as exc:
            raise self._trip(exc) from exc
        return int(task.task_uid)

    def ensure_index(
        self,
        uid: str,
        settings: dict[str, Any],
        synonyms: dict[str, list[str]],
        embedders: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Create the index if needed and apply its settings (idempotent). `embedders` are the
        index's vector models; one it has and is not named is removed with its vectors."""
        client = self.client()
        try:
            client.get_index(uid)
        except MeilisearchApiError as exc:
            if exc.code != "index_not_found":
                raise SearchUnavailable(str(exc)) from exc
            try:
                self.wait(self._run(lambda: client.create_index(uid, {"primaryKey": "id"})))
            except SearchUnavailable as created:
                if created.code != "index_already_exists":  # another worker was first: fine
                    raise
        except (MeilisearchCommunicationError, MeiliTimeout) as exc:
            raise self._trip(exc) from exc
        wanted = settings | {"synonyms": synonyms}
        current = self._embedders(uid)
        wanted_embedders: dict[str, Any] = dict.fromkeys(current)
        wanted_embedders.update(embedders or {})
        if wanted_embedders and any(
            current.get(name) != value for name, value in wanted_embedders.items()
        ):
            wanted["embedders"] = wanted_embedders
        # Straight to the route: the client library's update_settings cannot send the null
        # that removes an embedder.
        self.wait(
            self._run(lambda: TaskInfo(**client.http.patch(f"indexes/{uid}/settings", wanted)))
        )

    def _embedders(self, uid: str) -> dict[str, Any]:
        """The index's embedders as Meilisearch describes them (source and dimensions)."""
        try:
            raw = self.client().http.get(f"indexes/{uid}/settings/embedders") or {}
        except MeilisearchApiError as exc:
            raise SearchUnavailable(str(exc)) from exc
        except (MeilisearchCommunicationError, MeiliTimeout) as exc:
            raise self._trip(exc) from exc
        return {
            name: {"source": value.get("source"), "dimensions": value.get("dimensions")}
            for name, value in dict(raw).items()
        }

    def has_index(self, uid: str) -> bool:
        try:
            self.client().get_index(uid)
        except MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                return False
            raise SearchUnavailable(str(exc)) from exc
        except (MeilisearchCommunicationError, MeiliTimeout) as exc:
            raise self._trip(exc) from exc
        return True

    def upsert(self, uid: str, documents: list[dict[str, Any]]) -> int | None:
        if not documents:
            return None
        return self._run(
            lambda: self.client().index(uid).add_documents(documents, primary_key="id")
        )

    def delete(self, uid: str, ids: list[str]) -> int | None:
        if not ids:
            return None
        condition = f"id IN [{', '.join(quote(item) for item in ids)}]"
        return self._run(lambda: self.client().index(uid).delete_documents(filter=condition))

    def swap(self, pairs: list[tuple[str, str]]) -> None:
        try:
            meili.swap_indexes(self.client(), pairs, timeout_ms=TASK_TIMEOUT_MS)
        except meili.TaskFailed as exc:
            raise SearchUnavailable(str(exc), code=exc.code) from exc
        except MeilisearchApiError as exc:
            raise SearchUnavailable(f"Meilisearch refused: {exc}", code=exc.code) from exc
        except (MeilisearchCommunicationError, MeiliTimeout, MeilisearchError) as exc:
            raise self._trip(exc) from exc

    def drop(self, uid: str) -> None:
        try:
            self.wait(self._run(lambda: self.client().delete_index(uid)))
        except SearchUnavailable:
            logger.warning("could not delete index %s", uid)

    # --- reads -------------------------------------------------------------------------------

    def search(
        self,
        uid: str,
        query: str,
        *,
        filters: list[str] | None = None,
        facets: list[str] | None = None,
        page: int = 1,
        per_page: int = 10,
        locale: str | None = None,
        highlight: list[str] | None = None,
        semantic: Semantic | None = None,
    ) -> SearchResult:
        if not self.available:
            raise SearchUnavailable("search is paused after a recent failure")
        options: dict[str, Any] = {
            "page": page,
            "hitsPerPage": per_page,
            "attributesToCrop": highlight or [],
            "cropLength": 30,
            "attributesToHighlight": highlight or [],
            # Unlikely control characters mark highlights; templates escape, then add <mark>.
            "highlightPreTag": "\x02",
            "highlightPostTag": "\x03",
            "cropMarker": "…",
            # Questions are written in sentences: when not every word matches, give up the
            # most common words first rather than the last ones typed.
            "matchingStrategy": "frequency",
        }
        if filters:
            options["filter"] = filters
        if facets:
            options["facets"] = facets
        if locale in LOCALES:
            options["locales"] = [LOCALES[locale]]
        if semantic is not None and query.strip():
            options |= semantic.options()
        raw = self._post_search(uid, query, options)
        if raw is not None and raw.get("_embedder_refused"):
            options.pop("vector", None)
            options.pop("hybrid", None)
            raw = self._post_search(uid, query, options)
        if raw is None:
            return SearchResult(hits=[], total=0)
        if not raw.get("hits") and query.strip():
            # "frequency" keeps the rarest words; when those match nothing (a typo-free but
            # unknown word), dropping words from the end still finds the right entry.
            raw = self._post_search(uid, query, options | {"matchingStrategy": "last"}) or raw
        return SearchResult(
            hits=list(raw.get("hits", [])),
            total=int(raw.get("totalHits", len(raw.get("hits", [])))),
            facets={k: dict(v) for k, v in (raw.get("facetDistribution") or {}).items()},
            page=int(raw.get("page", page)),
            total_pages=int(raw.get("totalPages", 1)),
        )

    def federated(
        self,
        queries: Sequence[FederatedQuery],
        *,
        limit: int,
        locale: str | None = None,
        attributes: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One federated multi-search: the queries' hits in one list, best weighted ranking
        score first (each hit's `_federation` says which query and index it came from). A
        document several queries of one index found comes back once. Indexes that do not
        exist yet are left out rather than failing the whole search."""
        if not self.available:
            raise SearchUnavailable("search is paused after a recent failure")
        if self._http is None:
            raise SearchUnavailable("MEILI_URL is not configured")
        chosen = [query for query in queries if query.text.strip()]
        if not chosen:
            return []
        response = self._multi_search(chosen, limit, locale, attributes)
        retry = self._federated_retry(response, chosen)
        if retry is not None:
            if not retry:
                return []
            return self.federated(retry, limit=limit, locale=locale, attributes=attributes)
        if response.status_code >= 400:
            raise SearchUnavailable(f"Meilisearch answered {response.status_code}: {response.text}")
        hits: list[dict[str, Any]] = response.json().get("hits", [])
        return hits

    def _multi_search(
        self,
        chosen: Sequence[FederatedQuery],
        limit: int,
        locale: str | None,
        attributes: Sequence[str] | None,
    ) -> httpx.Response:
        assert self._http is not None
        body: dict[str, Any] = {
            "federation": {"limit": limit},
            "queries": [self._federated_query(query, locale, attributes) for query in chosen],
        }
        try:
            return self._http.post(
                "/multi-search",
                json=body,
                headers={"Authorization": f"Bearer {self.search_key()}"},
            )
        except httpx.HTTPError as exc:
            raise self._trip(exc) from exc

    def _federated_retry(
        self, response: httpx.Response, chosen: Sequence[FederatedQuery]
    ) -> list[FederatedQuery] | None:
        """The queries to send again when Meilisearch refused some of them ([]: none of them
        can succeed), or None when its answer stands."""
        if _embedder_refused(response) and any(query.semantic for query in chosen):
            # An index whose embedders are not set up yet (a brand that just changed model):
            # lexical results now rather than none.
            return [replace(query, semantic=None) for query in chosen]
        if response.status_code == 400 and "index_not_found" in response.text:
            missing = {query.index for query in chosen if not self._index_exists(query.index)}
            if missing and len(missing) < len({query.index for query in chosen}):
                return [query for query in chosen if query.index not in missing]
            return []
        return None

    @staticmethod
    def _federated_query(
        query: FederatedQuery, locale: str | None, attributes: Sequence[str] | None
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "indexUid": query.index,
            "q": query.text,
            "matchingStrategy": query.strategy,
            "federationOptions": {"weight": query.weight},
        }
        if query.filters:
            options["filter"] = list(query.filters)
        if attributes is not None:
            options["attributesToRetrieve"] = list(attributes)
        if locale in LOCALES:
            options["locales"] = [LOCALES[locale]]
        if query.semantic is not None:
            options |= query.semantic.options()
        return options

    def _index_exists(self, uid: str) -> bool:
        assert self._http is not None
        try:
            response = self._http.get(
                f"/indexes/{uid}/search",
                params={"q": "", "limit": 0},
                headers={"Authorization": f"Bearer {self.search_key()}"},
            )
        except httpx.HTTPError as exc:
            raise self._trip(exc) from exc
        return response.status_code != 404

    def _post_search(self, uid: str, query: str, options: dict[str, Any]) -> dict[str, Any] | None:
        """One search request; None when the index does not exist yet."""
        if self._http is None:
            raise SearchUnavailable("MEILI_URL is not configured")
        try:
            response = self._http.post(
                f"/indexes/{uid}/search",
                json={"q": query} | options,
                headers={"Authorization": f"Bearer {self.search_key()}"},
            )
        except httpx.HTTPError as exc:
            raise self._trip(exc) from exc
        if response.status_code == 404:
            return None
        if _embedder_refused(response) and "hybrid" in options:
            return {"_embedder_refused": True}
        if response.status_code >= 400:
            raise SearchUnavailable(f"Meilisearch answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        return body
