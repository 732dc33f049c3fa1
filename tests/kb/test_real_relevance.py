"""Relevance on real data, the small form of `make eval-relevance` (scripts/eval_relevance.py):
the beer dump from ../shared/data imported with the project's importer, and every one of its 24
real duplicate pairs typed into the ask form. The suggestions must keep finding the original
at least as often as they do now, so a later change cannot quietly lose it.

It runs the product's default search model ("auto": all-MiniLM-L6-v2 blended with the
multilingual USE for English, the multilingual USE alone for other languages), vectors computed
by the worker as after any import. The import takes about 10 s per backend and the vectors about
a minute; the iot dump would be quicker but has 2 pairs, too few for a floor that means anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from community.app import create_app
from community.core import meili, migrate
from community.core.db import make_engine, make_session_factory
from kb.search import SearchEngine
from scripts.relevance import (
    DEFAULT_DATA_DIR,
    DEPTH,
    SYSTEMS,
    Figures,
    Pair,
    SiteContext,
    by_site,
    cases_for,
    compute_vectors,
    english_queries,
    evaluate,
    figures,
    import_dump,
    ranked_list,
    read_pairs,
)
from tests.conftest import BACKENDS, fresh_database_url, make_settings

SITE = "beer.stackexchange.com"
PAIRS = 24
# Measured on 2026-12-06 with the hybrid suggestions (model "auto": MiniLM and the multilingual
# model blended for English, semantic ratio 0.7, KB and solved threads first among equals): 23 of
# the 24 originals among the 5 suggestions (recall@5 0.958, MRR 0.735; MiniLM alone 21, 0.875 /
# 0.70; lexical only 10, 0.42 / 0.24; before issue 12 4, 0.17). The floors leave two pairs of
# margin: the vectors come from float arithmetic whose last digits differ between machines.
MIN_RECALL_AT_5 = 0.875
MIN_MRR = 0.65


@pytest.mark.long
# The vectors of a thousand threads on two models: about two minutes on one core of a quick
# machine, over five on a slow one sharing its cores with the rest of the suite. The suite's
# 300 s is a guard against hangs, not a speed target (speed lives in bench/).
@pytest.mark.timeout(900)
def test_ask_form_suggestions_find_the_originals_of_real_duplicates(
    tmp_path: Path, meili_server: meili.MeiliServer
) -> None:
    folder = DEFAULT_DATA_DIR / SITE
    if not (folder / "Posts.xml").is_file():
        pytest.fail(
            f"the real Stack Exchange dumps are missing: no {folder}/Posts.xml. They live in "
            "../shared/data beside the repository (CI always has them); this test needs them."
        )
    pairs = read_pairs(folder)
    assert len(pairs) == PAIRS
    # One database, as make eval-relevance uses: relevance is Meilisearch's and the models',
    # the same on either backend (both are covered by every other test), and the vectors of a
    # thousand threads take a minute or two.
    url, remove = fresh_database_url(BACKENDS[-1], tmp_path)
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            found, ranks = _measure(folder, pairs, url, engine, tmp_path, meili_server)
        finally:
            engine.dispose()
    finally:
        remove()
    assert found.pairs == PAIRS
    assert found.recall[5] >= MIN_RECALL_AT_5, (
        f"suggestion recall@5 on {SITE} fell to {found.recall[5]:.3f} (floor {MIN_RECALL_AT_5}, "
        f"MRR {found.mrr:.3f}); originals found only for {ranks or 'no title'}"
    )
    assert found.mrr >= MIN_MRR, f"suggestion MRR on {SITE} fell to {found.mrr:.3f}"


def _measure(
    folder: Path,
    pairs: list[Pair],
    url: str,
    engine: Engine,
    tmp_path: Path,
    meili_server: meili.MeiliServer,
) -> tuple[Figures, dict[str, int]]:
    # The product's default model ("auto"), vectors computed by the worker after the import.
    product = make_settings(tmp_path, url, meili_server.url, search_model="auto")
    search = SearchEngine(product)
    session_factory = make_session_factory(engine)
    imported = import_dump(session_factory, folder, search)
    vectors = compute_vectors(session_factory, product)
    assert vectors.documents == len(imported.threads)  # every question was embedded
    client = TestClient(create_app(product, engine=engine))
    site = SiteContext.load(session_factory, imported.brand, client, search)

    outcomes = evaluate(
        [SYSTEMS["suggest"]],
        {imported.brand: site},
        cases_for(english_queries(pairs), {SITE: imported}),
    )

    ranks = {o.case.query.text: o.rank for o in outcomes if o.rank is not None}
    return by_site(outcomes, "suggest")[SITE], ranks


def test_the_duplicate_and_repeats_never_count_and_ranks_stop_at_the_depth() -> None:
    returned = [7, 3, 7, 99, *range(100, 120)]
    ranked = ranked_list(returned, duplicate=3)
    assert ranked == [7, 99, *range(100, 108)]
    assert len(ranked) == DEPTH

    found = figures([1, 4, 10, None])
    assert found.pairs == 4
    assert found.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert found.mrr == (1 + 1 / 4 + 1 / 10) / 4
