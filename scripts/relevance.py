"""The core of the relevance evaluation on real data (`make eval-relevance`, and the small form
in tests/kb/test_real_relevance.py): duplicate pairs read from Stack Exchange dumps, the dumps
imported with the project's importer, a registry of retrieval systems, and the figures.

A pair is a PostLinks row with LinkTypeId=3 whose two ends are questions in Posts.xml: PostId
is the duplicate, RelatedPostId the original. Moderators decided the original answers the
duplicate, so the duplicate's title, typed into the product, should find the original. The
duplicate itself never counts: it is dropped from every result list before ranking.

A system is one function `(site, query, locale) -> ranked thread ids` for one brand; register a
new one (semantic, hybrid at some ratio, ...) with `@system("name", "what it is")` and every
report measures it. KB entries count as their source thread; an entry without one (an article
written from scratch) keeps its place in the list as a negative id that matches nothing.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import html as lxml_html
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from community.core.import_models import ImportKey  # noqa: E402
from community.core.models import Brand, ThreadStatus  # noqa: E402
from community.core.outbox import OutboxEvent  # noqa: E402
from community.core.settings import Settings  # noqa: E402
from community.importing.report import ImportReport  # noqa: E402
from community.importing.service import Importer, ensure_forum  # noqa: E402
from community.importing.stackexchange import StackExchangeDump  # noqa: E402
from community.worker import Worker  # noqa: E402
from kb import suggestions  # noqa: E402
from kb.models import Article, Solution  # noqa: E402
from kb.search import LOCALES, SearchEngine  # noqa: E402
from kb.search_queries import LEXICAL_RULES, equals, lexical_queries  # noqa: E402
from kb.vectors import VECTORS_NEEDED  # noqa: E402
from scripts.check_real import forum_slug_for, iter_rows  # noqa: E402

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
SPANISH_SET = REPO_ROOT / "scripts" / "eval_relevance_es.tsv"
DEPTH = 10  # ranks beyond this count as not found (MRR 0)
CUTOFFS = (1, 5, 10)
SUGGESTIONS_SHOWN = 5  # kb.suggestions.suggest's limit: the ask form shows no more


class EvaluationError(RuntimeError):
    """The evaluation cannot measure honestly (a missing dump, a degraded search, ...)."""


# --- pairs from the dumps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    site: str  # the dump's folder name, e.g. beer.stackexchange.com
    duplicate: int  # source question ids
    original: int
    title: str  # the duplicate's title exactly as in Posts.xml


def dump_folders(data_dir: Path) -> list[Path]:
    """Every dump folder (one with a Posts.xml) in `data_dir`, by name."""
    if not data_dir.is_dir():
        return []
    return sorted(path for path in data_dir.iterdir() if (path / "Posts.xml").is_file())


def brand_slug_for(folder_name: str) -> str:
    """beer.stackexchange.com -> beer, bicycles.meta.stackexchange.com -> bicycles-meta."""
    return forum_slug_for(folder_name.removesuffix(".stackexchange.com"))


def read_pairs(folder: Path) -> list[Pair]:
    """The dump's duplicate pairs whose two ends are questions, in PostLinks order."""
    titles: dict[int, str] = {}
    for row in iter_rows(folder / "Posts.xml"):
        # Raw rows, not the importer's records: the query is the title exactly as typed.
        if row.get("PostTypeId") == "1" and row.get("Id", "").isdigit():
            titles[int(row["Id"])] = row.get("Title", "")
    links = StackExchangeDump(folder).duplicates().records
    return [
        Pair(
            site=folder.name,
            duplicate=link.duplicate_external_id,
            original=link.original_external_id,
            title=titles[link.duplicate_external_id],
        )
        for link in links
        if link.duplicate_external_id in titles and link.original_external_id in titles
    ]


@dataclass(frozen=True)
class Query:
    pair: Pair
    text: str
    locale: str  # the asker's language: the app's Accept-Language, Meilisearch's `locales`


def english_queries(pairs: Iterable[Pair]) -> list[Query]:
    return [Query(pair, pair.title, "en") for pair in pairs]


def spanish_queries(path: Path, pairs: Iterable[Pair]) -> list[Query]:
    """The Spanish set: (site, duplicate's question id, Spanish title) rows, each asking for
    the originals of that duplicate."""
    by_duplicate: dict[tuple[str, int], list[Pair]] = {}
    for pair in pairs:
        by_duplicate.setdefault((pair.site, pair.duplicate), []).append(pair)
    queries: list[Query] = []
    with path.open(encoding="utf-8", newline="") as file:
        for line, row in enumerate(csv.DictReader(file, delimiter="\t"), start=2):
            key = (row["site"], int(row["question_id"]))
            if key not in by_duplicate:
                raise EvaluationError(f"{path.name}:{line}: {key} is not the duplicate of a pair")
            queries.extend(Query(pair, row["title_es"].strip(), "es") for pair in by_duplicate[key])
    return queries


# --- importing ---------------------------------------------------------------------------------


@dataclass
class ImportedSite:
    folder: Path
    brand: str
    report: ImportReport
    seconds: float  # the whole Importer.run()
    threads: dict[int, int]  # source question id -> our thread id
    kb_entries: int  # KB documents the index step wrote beside the threads

    @property
    def index_seconds(self) -> float:
        return self.report.seconds.get("search index", 0.0)

    @property
    def documents(self) -> int:
        return self.report.indexed + self.kb_entries


def import_dump(
    session_factory: sessionmaker[Session], folder: Path, search: SearchEngine | None
) -> ImportedSite:
    """`community import stackexchange` in-process: the dump as its own brand, one forum."""
    brand_slug = brand_slug_for(folder.name)
    dump = StackExchangeDump(folder)
    dump.validate()
    with session_factory() as db:
        forum = ensure_forum(db, brand_slug, forum_slug_for(folder.name), forum_name=folder.name)
        db.commit()
        forum_id, brand_id = forum.id, forum.brand_id
    started = time.perf_counter()
    report = Importer(session_factory, dump, forum_id=forum_id, search=search).run()
    seconds = time.perf_counter() - started
    with session_factory() as db:
        keys = db.execute(
            select(ImportKey.external_id, ImportKey.local_id).where(
                ImportKey.source == dump.name, ImportKey.kind == "question"
            )
        )
        threads = {int(external): int(local) for external, local in keys}
        kb_entries = len(
            db.scalars(
                select(Solution.thread_id).where(
                    Solution.brand_id == brand_id, Solution.withdrawn_at.is_(None)
                )
            ).all()
        )
    return ImportedSite(folder, brand_slug, report, seconds, threads, kb_entries)


@dataclass(frozen=True)
class VectorRun:
    documents: int  # threads and articles embedded (a KB solution shares its thread's)
    seconds: float


def compute_vectors(session_factory: sessionmaker[Session], settings: Settings) -> VectorRun:
    """What the worker does after an import, run here until nothing is left: every search
    event handled, so every document has its vectors (kb.vectors) and carries them in the
    indexes. Timed: the catch-up after an import."""
    worker = Worker(settings, session_factory)
    started = time.perf_counter()
    with session_factory() as db:
        pending = db.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.kind == VECTORS_NEEDED, OutboxEvent.done_at.is_(None))
        )
    while worker.drain_outbox(limit=200):
        pass
    seconds = time.perf_counter() - started
    with session_factory() as db:
        failed = db.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.done_at.is_(None), OutboxEvent.last_error.is_not(None))
        )
    if failed:
        raise EvaluationError(f"{failed} worker events failed while computing vectors")
    return VectorRun(int(pending or 0), seconds)


# --- the systems -------------------------------------------------------------------------------


@dataclass
class SiteContext:
    """What a system may use to answer for one brand."""

    brand: str
    client: TestClient  # the real app, in-process
    search: SearchEngine  # a writer's engine: straight to the brand's Meilisearch indexes
    session_factory: sessionmaker[Session]  # the database the dumps were imported into
    article_threads: dict[int, int] = field(default_factory=dict)  # article id -> source thread
    # What a system builds once per brand on its first (unmeasured, warm-up) call: document
    # vectors, say. Keyed by the system's name.
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        session_factory: sessionmaker[Session],
        brand: str,
        client: TestClient,
        search: SearchEngine,
    ) -> SiteContext:
        with session_factory() as db:
            articles = db.execute(
                select(Article.id, Article.source_thread_id)
                .join(Brand, Brand.id == Article.brand_id)
                .where(Brand.slug == brand, Article.source_thread_id.is_not(None))
            )
            by_article = {int(a): int(t) for a, t in articles if t is not None}
        return cls(brand, client, search, session_factory, by_article)

    def entry_thread(self, kind: str, entry_id: int) -> int:
        """The thread a search hit stands for (negative: an article with no source thread)."""
        if kind == "article":
            return self.article_threads.get(entry_id, -entry_id)
        return entry_id  # solutions and threads are named by their thread's id


SystemFn = Callable[[SiteContext, str, str], list[int]]


@dataclass(frozen=True)
class System:
    name: str
    description: str
    run: SystemFn


SYSTEMS: dict[str, System] = {}


def register(name: str, description: str, run: SystemFn) -> None:
    if name in SYSTEMS:
        raise ValueError(f"system {name!r} is registered twice")
    SYSTEMS[name] = System(name, description, run)


def system(name: str, description: str) -> Callable[[SystemFn], SystemFn]:
    """Decorator: register `(site, query, locale) -> ranked thread ids` under `name`."""

    def decorate(run: SystemFn) -> SystemFn:
        register(name, description, run)
        return run

    return decorate


def _check(response: Any, what: str) -> None:
    if response.status_code != 200:
        raise EvaluationError(f"{what} answered {response.status_code}: {response.text[:200]}")


@system(
    "suggest",
    "ask form: suggestions while the title is typed (GET /b/{brand}/kb/suggest, htmx; "
    "KB entries and answered threads by relevance, KB and solved boosted, 5 shown)",
)
def ask_form_suggestions(site: SiteContext, query: str, locale: str) -> list[int]:
    response = site.client.get(
        f"/b/{site.brand}/kb/suggest",
        params={"title": query},
        headers={"HX-Request": "true", "Accept-Language": locale},
    )
    _check(response, "the suggestion endpoint")
    if not response.text.strip():
        return []  # the fragment is empty when nothing matched
    fragment = lxml_html.fromstring(response.text)
    if fragment.xpath("//p[@class='meta']"):
        raise EvaluationError("suggestions came from the database fallback, not Meilisearch")
    return [
        site.entry_thread(str(link.get("data-entry-type")), int(str(link.get("data-entry-id"))))
        for link in fragment.xpath("//a[@data-entry-id]")
    ]


def _search_api(site: SiteContext, query: str, locale: str, *, scope: str) -> list[int]:
    response = site.client.get(
        f"/api/v1/brands/{site.brand}/search",
        # One more than the depth: the duplicate may take a place and is dropped.
        params={"q": query, "scope": scope, "per_page": DEPTH + 1},
        headers={"Accept-Language": locale},
    )
    _check(response, f"the search API ({scope})")
    payload = response.json()
    if payload.get("degraded"):
        raise EvaluationError("the search API fell back to the database, not Meilisearch")
    return [site.entry_thread(hit["kind"], int(hit["entry_id"])) for hit in payload["hits"]]


register(
    "search-community",
    "search page / JSON API, scope community: every visible thread",
    partial(_search_api, scope="community"),
)
register(
    "search-kb",
    "search page / JSON API, scope kb: community solutions and articles",
    partial(_search_api, scope="kb"),
)


def _threads_index(
    site: SiteContext, query: str, locale: str, *, strategy: str, solved_only: bool
) -> list[int]:
    options: dict[str, Any] = {
        "limit": DEPTH + 1,
        "attributesToRetrieve": ["thread_id"],
        "matchingStrategy": strategy,
    }
    if solved_only:
        options["filter"] = [equals("status", ThreadStatus.SOLVED.value)]
    if locale in LOCALES:  # as the app asks for the reader's language
        options["locales"] = [LOCALES[locale]]
    index = site.search.client().index(site.search.threads_index(site.brand))
    result = index.search(query, options)
    return [int(hit["thread_id"]) for hit in result["hits"]]


STRATEGIES = {
    "frequency": 'matchingStrategy "frequency" (the product\'s, minus its retry with "last" '
    "when nothing matches)",
    "last": 'matchingStrategy "last" (drops words from the end until something matches)',
    "all": 'matchingStrategy "all" (every word must match)',
}
for _strategy, _described in STRATEGIES.items():
    for _solved in (False, True):
        register(
            f"threads-{_strategy}{'-solved' if _solved else ''}",
            f"threads index, {_described}, "
            + ("solved threads only" if _solved else "every visible thread"),
            partial(_threads_index, strategy=_strategy, solved_only=_solved),
        )


ANSWERED = ('reply_count > 0 AND status != "closed"',)


def _threads_federated(
    site: SiteContext, query: str, locale: str, *, rule: str, answered_only: bool
) -> list[int]:
    index = site.search.threads_index(site.brand)
    hits = site.search.federated(
        lexical_queries(index, query, filters=ANSWERED if answered_only else (), rule=rule),
        limit=DEPTH + 1,
        locale=locale,
        attributes=["thread_id"],
    )
    return [int(hit["thread_id"]) for hit in hits]


for _rule in LEXICAL_RULES:
    for _answered in (False, True):
        register(
            f"fed-{_rule}{'-answered' if _answered else ''}",
            f"threads index, federated lexical rule {_rule!r}, "
            + ("answered open threads only" if _answered else "every visible thread"),
            partial(_threads_federated, rule=_rule, answered_only=_answered),
        )


def _suggest_variant(
    site: SiteContext,
    query: str,
    locale: str,
    *,
    rule: str,
    ratio: float,
    model: str | None,
    boost: float,
) -> list[int]:
    """The ask form's pipeline (kb.suggestions.suggest) with another lexical rule, semantic
    ratio, model or boost: the candidates for the product's choice."""
    with site.session_factory() as db:
        brand = db.scalar(select(Brand).where(Brand.slug == site.brand))
        if brand is None:
            raise EvaluationError(f"no brand {site.brand}")
        hits, degraded = suggestions.suggest(
            db,
            site.search,
            brand,
            query,
            locale=locale,
            limit=SUGGESTIONS_SHOWN,
            rule=rule,
            semantic_ratio=ratio,
            model=model,
            boost=boost,
        )
    if degraded:
        raise EvaluationError("suggestions came from the database fallback, not Meilisearch")
    return [site.entry_thread(hit.kind, hit.entry_id) for hit in hits]


SEMANTIC_RATIOS = (0.0, 0.5, 0.7, 1.0)
BOOSTS = (1.0, 1.02, 1.05)
for _rule in ("frequency", "drop-one-weighted"):
    for _ratio in SEMANTIC_RATIOS:
        for _boost in BOOSTS:
            register(
                f"suggest-{_rule}-r{_ratio:g}-b{_boost:g}",
                f"suggestion pipeline, lexical rule {_rule!r}, hybrid semantic ratio {_ratio:g}, "
                f"KB/solved boost {_boost:g}",
                partial(_suggest_variant, rule=_rule, ratio=_ratio, model=None, boost=_boost),
            )
for _model in ("minilm", "use-multilingual"):
    register(
        f"suggest-{_model}-only",
        f"suggestion pipeline with the {_model} model for every language (the product's rule, "
        "share and boost)",
        partial(
            _suggest_variant,
            rule=suggestions.SUGGEST_RULE,
            ratio=suggestions.SUGGEST_SEMANTIC_RATIO,
            model=_model,
            boost=suggestions.SUGGEST_BOOST,
        ),
    )


# --- running and the figures --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A query for one brand with the thread ids that decide it."""

    query: Query
    brand: str
    duplicate_thread: int
    original_thread: int


def cases_for(queries: Iterable[Query], imported: Mapping[str, ImportedSite]) -> list[Case]:
    """Queries with their thread ids; a pair whose ends were not imported is an error (the
    figures would quietly count fewer pairs)."""
    cases = []
    for query in queries:
        site = imported[query.pair.site]
        duplicate = site.threads.get(query.pair.duplicate)
        original = site.threads.get(query.pair.original)
        if duplicate is None or original is None:
            raise EvaluationError(f"{query.pair}: a question of this pair was not imported")
        cases.append(Case(query, site.brand, duplicate, original))
    return cases


@dataclass(frozen=True)
class Outcome:
    system: str
    case: Case
    ranked: list[int]  # thread ids, the duplicate and repeats dropped, at most DEPTH
    seconds: float

    @property
    def rank(self) -> int | None:
        found = self.case.original_thread
        return self.ranked.index(found) + 1 if found in self.ranked else None


def ranked_list(returned: Iterable[int], duplicate: int) -> list[int]:
    """What the system returned without the duplicate and repeats (a solution and the article
    written from it are one thread), cut at DEPTH."""
    kept: list[int] = []
    for thread_id in returned:
        if thread_id != duplicate and thread_id not in kept:
            kept.append(thread_id)
    return kept[:DEPTH]


@contextmanager
def duplicate_unborn(site: SiteContext, thread_id: int) -> Iterator[None]:
    """The duplicate leaves the threads index while its own title is typed, and comes back
    after: when a customer types a question, it does not exist yet. Without this, the
    suggestions, which replace a thread closed as a duplicate by its original, would find the
    original through the duplicate itself."""
    index = site.search.threads_index(site.brand)
    documents = (
        site.search.client()
        .index(index)
        .get_documents({"filter": f'id = "{int(thread_id)}"', "limit": 1, "retrieveVectors": True})
    )
    kept = [dict(document) for document in documents.results]
    if kept:
        site.search.wait(site.search.delete(index, [str(thread_id)]) or 0)
    try:
        yield
    finally:
        if kept:
            site.search.wait(site.search.upsert(index, kept) or 0)


def evaluate(
    systems: Sequence[System], sites: Mapping[str, SiteContext], cases: Sequence[Case]
) -> list[Outcome]:
    """Every case through every system, each call timed (wall clock, in-process), the case's
    duplicate out of the index meanwhile."""
    outcomes = []
    for case in cases:
        site = sites[case.brand]
        with duplicate_unborn(site, case.duplicate_thread):
            for chosen in systems:
                started = time.perf_counter()
                returned = chosen.run(site, case.query.text, case.query.locale)
                seconds = time.perf_counter() - started
                outcomes.append(
                    Outcome(
                        chosen.name, case, ranked_list(returned, case.duplicate_thread), seconds
                    )
                )
    return outcomes


@dataclass(frozen=True)
class Figures:
    pairs: int
    recall: dict[int, float]  # cutoff -> share of pairs with the original in the top k
    mrr: float  # mean of 1/rank within the top DEPTH (0 when absent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            **{f"recall@{k}": round(value, 4) for k, value in self.recall.items()},
            "mrr": round(self.mrr, 4),
        }


def figures(ranks: Sequence[int | None]) -> Figures:
    total = len(ranks)
    if not total:
        return Figures(0, dict.fromkeys(CUTOFFS, 0.0), 0.0)
    found = [rank for rank in ranks if rank is not None]
    return Figures(
        pairs=total,
        recall={k: sum(1 for rank in found if rank <= k) / total for k in CUTOFFS},
        mrr=sum(1 / rank for rank in found) / total,
    )


OVERALL = "overall"


def by_site(outcomes: Iterable[Outcome], system_name: str) -> dict[str, Figures]:
    """Figures per site and OVERALL (micro-averaged: every pair weighs the same)."""
    ranks: dict[str, list[int | None]] = {}
    for outcome in outcomes:
        if outcome.system == system_name:
            ranks.setdefault(outcome.case.query.pair.site, []).append(outcome.rank)
    result = {site: figures(values) for site, values in sorted(ranks.items())}
    result[OVERALL] = figures([rank for values in ranks.values() for rank in values])
    return result
