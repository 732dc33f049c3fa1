"""Benchmark of the embedding models: speed, memory, and semantic-only relevance on real data.

For each model (`use-multilingual`, `minilm`; `--models` to choose):

1. Relevance, offline, on the real duplicate links of the Stack Exchange dumps in
   ../shared/data: every PostLinks LinkTypeId=3 pair whose two ends are questions in Posts.xml.
   The query is the duplicate's title as typed; the documents are every other question of the
   same site (title + question text + accepted answer, else the top-scored one, HTML stripped
   and shortened by `kb.embeddings.document_text`); ranking by cosine alone (no lexical part,
   no database, no Meilisearch); the duplicate itself never counts. Recall@1/5/10 and MRR per
   site and overall.
2. Across languages: the same pairs with the duplicate's title translated into Spanish
   (SPANISH_TITLES below, translated by hand from the titles alone, before any result was
   seen) against the same English documents.
3. Speed on one core (one BLAS thread, the embedders' default): milliseconds per query (one
   title, no cache; p50/p95 over the titles of the dumps) and documents per second embedded
   in batches.
4. Memory: the RSS a model adds to a process that has already imported the app, measured in a
   fresh child process (current after embedding, and peak).

    .venv/bin/python bench/bench_embeddings.py                    # both models, ~3 min
    .venv/bin/python bench/bench_embeddings.py --models use-multilingual
    .venv/bin/python bench/bench_embeddings.py --text-variants    # how much of a thread to embed
    .venv/bin/python bench/bench_embeddings.py --blends           # the two models together

Figures are printed, never asserted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import (
    REPO_ROOT,
    calibrate,
    code_version,
    console,
    exit_cleanly_on_signals,
    percentile,
    run_main,
)
from lxml import etree
from rich.table import Table

from kb.documents import plain_text
from kb.embeddings import create_embedder, document_text
from kb.embeddings.base import Embedder, Vectors

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
SITES = ("beer.stackexchange.com", "iot.stackexchange.com", "bicycles.meta.stackexchange.com")
MODELS = ("use-multilingual", "minilm")
KS = (1, 5, 10)
QUERY_SAMPLES = 300  # titles timed one by one per model

# The duplicates' titles in Spanish, as a Spanish-speaking customer would type them: translated
# by hand from the English title alone, before running any model on them. Keyed by (site, id of
# the duplicate question).
SPANISH_TITLES: dict[tuple[str, int], str] = {
    ("beer.stackexchange.com", 29): (
        '¿Qué significa el término "imperial" en los estilos o nombres de cerveza?'
    ),
    ("beer.stackexchange.com", 47): (
        '¿A partir de qué punto o porcentaje puede una cerveza "envejecer" bien?'
    ),
    ("beer.stackexchange.com", 118): "¿Por qué una cerveza nitro sabe diferente?",
    ("beer.stackexchange.com", 115): "¿Qué estilos de cerveza se pueden envejecer?",
    ("beer.stackexchange.com", 369): "¿Cómo se produce la cerveza sin alcohol?",
    ("beer.stackexchange.com", 479): "¿Por qué la cerveza te deshidrata?",
    ("beer.stackexchange.com", 639): "¿Debo dejar envejecer una cerveza antes de beberla?",
    ("beer.stackexchange.com", 649): "¿Qué diablos es una lambic?",
    ("beer.stackexchange.com", 745): "Reducir la espuma en una cerveza con exceso de gas",
    ("beer.stackexchange.com", 907): "¿Hay cervezas que se deben servir sin gas?",
    ("beer.stackexchange.com", 993): "¿Quién inventó la cerveza y cuándo?",
    ("beer.stackexchange.com", 2158): "¿Volver a refrigerar la cerveza afecta a su sabor?",
    ("beer.stackexchange.com", 3261): "Dejar que una cerveza fría llegue a temperatura ambiente",
    ("beer.stackexchange.com", 4620): "Vasos para cerveza",
    ("beer.stackexchange.com", 4673): "Usar cerveza como producto para el cuidado del cabello",
    ("beer.stackexchange.com", 4755): "¿Cómo elegir el vaso adecuado para cada cerveza?",
    ("beer.stackexchange.com", 4785): "Cerveza un poco caducada",
    ("beer.stackexchange.com", 7134): (
        "¿Por qué las etiquetas, sobre todo de las IPA, no indican el contenido de alcohol?"
    ),
    ("beer.stackexchange.com", 7155): "¿Existe algún remedio infalible para la resaca?",
    ("beer.stackexchange.com", 7602): "¿Es raro que me guste el vino tinto un poco frío?",
    ("beer.stackexchange.com", 7750): (
        "¿Existe alguna nevera profesional que pueda carbonatar cerveza?"
    ),
    ("beer.stackexchange.com", 7827): "¿Qué es el vino de Noé? ¿Es saludable?",
    ("beer.stackexchange.com", 6245): "¿Cuánto alcohol es seguro beber al día?",
    ("beer.stackexchange.com", 8058): "Tengo cervezas y la más antigua tiene 32 años",
    ("iot.stackexchange.com", 52): (
        "¿Debo crear redes separadas para los dispositivos IoT y para los ordenadores normales?"
    ),
    ("iot.stackexchange.com", 774): (
        "Acabo de comprar un Google Home: ¿qué hub(s) inteligente(s) necesito?"
    ),
    ("bicycles.meta.stackexchange.com", 1): "Propongan un nombre de dominio",
    ("bicycles.meta.stackexchange.com", 557): (
        "Anuncios de promoción de la comunidad - segundo semestre de 2011"
    ),
    ("bicycles.meta.stackexchange.com", 778): "Anuncios de promoción de la comunidad - 2013",
    ("bicycles.meta.stackexchange.com", 841): (
        "¿Qué opinan del icono usado para este sitio de Bicicletas de SE?"
    ),
    ("bicycles.meta.stackexchange.com", 861): "Anuncios de promoción de la comunidad - 2014",
    ("bicycles.meta.stackexchange.com", 1059): (
        "¿Nuevo usuario de Bicicletas con un vínculo comercial?"
    ),
    ("bicycles.meta.stackexchange.com", 1252): (
        'Ampliar la lista de "Cerrar --> Fuera de tema --> pertenece a otro sitio de SE"'
    ),
    ("bicycles.meta.stackexchange.com", 1267): "Anuncios de promoción de la comunidad - 2018",
    ("bicycles.meta.stackexchange.com", 1317): "Anuncios de promoción de la comunidad — 2019",
}

# (label, question characters, answer characters) tried by --text-variants; None: all of it.
TEXT_VARIANTS: tuple[tuple[str, int | None, int | None], ...] = (
    ("title only", 0, 0),
    ("title + question 600", 600, 0),
    ("title + question 600 + answer 400 (default)", 600, 400),
    ("title + question 1200 + answer 800", 1200, 800),
    ("title + question 300 + answer 300", 300, 300),
    ("everything", None, None),
)


# --- the data --------------------------------------------------------------------------------


@dataclass
class Question:
    id: int
    title: str
    body: str  # plain text
    answer: str  # plain text of the accepted answer, else the top-scored one, else ""


@dataclass
class Pair:
    duplicate: int
    original: int
    title: str


@dataclass
class Site:
    name: str
    questions: list[Question]
    pairs: list[Pair]
    index: dict[int, int] = field(default_factory=dict)  # question id -> row

    def __post_init__(self) -> None:
        self.index = {question.id: row for row, question in enumerate(self.questions)}

    def texts(self, question_chars: int | None, answer_chars: int | None) -> list[str]:
        unbounded = 10**9
        return [
            document_text(
                q.title,
                q.body,
                q.answer,
                question_chars=unbounded if question_chars is None else question_chars,
                answer_chars=unbounded if answer_chars is None else answer_chars,
            )
            for q in self.questions
        ]


def _rows(path: Path) -> list[dict[str, str]]:
    rows = []
    for _event, element in etree.iterparse(str(path), tag="row"):
        rows.append(dict(element.attrib))
        element.clear()
    return rows


def load_site(folder: Path) -> Site:
    questions: dict[int, dict[str, str]] = {}
    answers: dict[int, list[dict[str, str]]] = {}
    for row in _rows(folder / "Posts.xml"):
        if row.get("PostTypeId") == "1":
            questions[int(row["Id"])] = row
        elif row.get("PostTypeId") == "2" and "ParentId" in row:
            answers.setdefault(int(row["ParentId"]), []).append(row)
    loaded = []
    for question_id, row in questions.items():
        candidates = answers.get(question_id, [])
        accepted = next((a for a in candidates if a["Id"] == row.get("AcceptedAnswerId")), None)
        best = accepted or max(
            candidates, key=lambda a: (int(a.get("Score", "0")), -int(a["Id"])), default=None
        )
        loaded.append(
            Question(
                id=question_id,
                title=row.get("Title", ""),
                body=plain_text(row.get("Body", "")),
                answer=plain_text(best.get("Body", "")) if best else "",
            )
        )
    pairs = []
    seen = set()
    for row in _rows(folder / "PostLinks.xml"):
        if row.get("LinkTypeId") != "3":
            continue
        duplicate, original = int(row["PostId"]), int(row["RelatedPostId"])
        if duplicate in questions and original in questions and (duplicate, original) not in seen:
            seen.add((duplicate, original))
            pairs.append(Pair(duplicate, original, questions[duplicate].get("Title", "")))
    return Site(folder.name, loaded, pairs)


# --- relevance -------------------------------------------------------------------------------


@dataclass
class Ranks:
    ranks: list[int] = field(default_factory=list)

    def add(self, other: Ranks) -> None:
        self.ranks.extend(other.ranks)

    def recall(self, k: int) -> float:
        return sum(rank <= k for rank in self.ranks) / len(self.ranks) if self.ranks else 0.0

    @property
    def mrr(self) -> float:
        return sum(1 / rank for rank in self.ranks) / len(self.ranks) if self.ranks else 0.0


def rank_originals(site: Site, documents: Vectors, queries: Vectors) -> Ranks:
    """Rank of each pair's original among the site's questions by cosine to the query, the
    duplicate left out (1 = first)."""
    result = Ranks()
    for pair, query in zip(site.pairs, queries, strict=True):
        scores = documents @ query
        scores[site.index[pair.duplicate]] = -np.inf
        target = scores[site.index[pair.original]]
        result.ranks.append(1 + int(np.count_nonzero(scores > target)))
    return result


def spanish_queries(site: Site) -> list[str]:
    return [SPANISH_TITLES[(site.name, pair.duplicate)] for pair in site.pairs]


# --- speed and memory ------------------------------------------------------------------------


@dataclass
class ModelRun:
    model: str
    load_seconds: float
    documents: int = 0
    embed_seconds: float = 0.0
    query_ms: list[float] = field(default_factory=list)
    by_site: dict[str, Ranks] = field(default_factory=dict)
    spanish_by_site: dict[str, Ranks] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)

    def overall(self, spanish: bool = False) -> Ranks:
        total = Ranks()
        for ranks in (self.spanish_by_site if spanish else self.by_site).values():
            total.add(ranks)
        return total


def time_queries(embedder: Embedder, titles: Sequence[str]) -> list[float]:
    for title in titles[:10]:  # warm-up
        embedder.embed([title])
    timings = []
    for title in titles:
        started = time.perf_counter()
        embedder.embed([title])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def measure_model(name: str, sites: list[Site]) -> ModelRun:
    embedder = create_embedder(name)
    started = time.perf_counter()
    embedder.embed(["load the model"])
    run = ModelRun(name, load_seconds=time.perf_counter() - started)
    for site in sites:
        texts = site_texts(site)
        started = time.perf_counter()
        documents = embedder.embed(texts)
        run.embed_seconds += time.perf_counter() - started
        run.documents += len(texts)
        run.by_site[site.name] = rank_originals(
            site, documents, embedder.embed([pair.title for pair in site.pairs])
        )
        run.spanish_by_site[site.name] = rank_originals(
            site, documents, embedder.embed(spanish_queries(site))
        )
    console.print(
        f"  {run.documents} documents in {run.embed_seconds:.1f} s "
        f"(load {run.load_seconds:.2f} s); timing queries ..."
    )
    titles = [q.title for site in sites for q in site.questions]
    step = max(1, len(titles) // QUERY_SAMPLES)
    run.query_ms = time_queries(embedder, titles[::step][:QUERY_SAMPLES])
    run.rss = measure_rss(name)
    return run


def site_texts(site: Site) -> list[str]:
    return [document_text(q.title, q.body, q.answer) for q in site.questions]


def measure_rss(name: str) -> dict[str, float]:
    """RSS added by loading `name` and embedding documents and queries, in a fresh process
    that has imported the app first (what a web or worker process already holds)."""
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, __file__, "--rss-child", name],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    if done.returncode != 0:
        console.print(f"[red]RSS child for {name} failed:[/red] {done.stderr.strip()[-500:]}")
        return {}
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rss_child(name: str) -> None:
    from pathlib import Path as _Path

    import community.app  # noqa: F401 - what a web process has loaded before any embedder

    def current() -> float:
        for line in _Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak() -> float:
        for line in _Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    _Path("/proc/self/clear_refs").write_text("5")  # peak from here
    baseline = current()
    embedder = create_embedder(name)
    embedder.embed(["load"])
    loaded = current()
    sentence = "My beer went flat after a week in the fridge, is it still safe to drink? " * 14
    embedder.embed([sentence] * 256)
    for index in range(200):
        embedder.embed([f"query number {index} about beer storage"])
    print(
        json.dumps(
            {
                "baseline": baseline,
                "loaded": loaded - baseline,
                "after": current() - baseline,
                "peak": peak() - baseline,
            }
        )
    )


# --- reporting -------------------------------------------------------------------------------


def relevance_table(title: str, runs: list[ModelRun], sites: list[Site], spanish: bool) -> Table:
    table = Table(title=title)
    table.add_column("model")
    table.add_column("site")
    table.add_column("pairs", justify="right")
    for k in KS:
        table.add_column(f"recall@{k}", justify="right")
    table.add_column("MRR", justify="right")
    for run in runs:
        by_site = run.spanish_by_site if spanish else run.by_site
        rows: list[tuple[str, Ranks]] = [(site.name, by_site[site.name]) for site in sites]
        rows.append(("[bold]overall[/bold]", run.overall(spanish)))
        for label, ranks in rows:
            table.add_row(
                run.model,
                label,
                str(len(ranks.ranks)),
                *(f"{ranks.recall(k):.2f}" for k in KS),
                f"{ranks.mrr:.2f}",
            )
        table.add_section()
    return table


def speed_table(runs: list[ModelRun]) -> Table:
    table = Table(title="Speed and memory (one BLAS thread)")
    for column in (
        "model",
        "load s",
        "query p50 ms",
        "query p95 ms",
        "documents/s",
        "RSS added after load",
        "after use",
        "peak",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for run in runs:
        table.add_row(
            run.model,
            f"{run.load_seconds:.2f}",
            f"{percentile(run.query_ms, 50):.1f}",
            f"{percentile(run.query_ms, 95):.1f}",
            f"{run.documents / run.embed_seconds:.0f}",
            *(f"{run.rss[key]:.0f} MiB" if key in run.rss else "?" for key in ("loaded", "after")),
            f"{run.rss['peak']:.0f} MiB" if "peak" in run.rss else "?",
        )
    return table


def text_variants(models: Sequence[str], sites: list[Site]) -> None:
    table = Table(title="How much of a thread to embed (English queries, all pairs)")
    for column in ("model", "document text", "recall@1", "recall@5", "recall@10", "MRR"):
        table.add_column(column)
    for name in models:
        embedder = create_embedder(name)
        for label, question_chars, answer_chars in TEXT_VARIANTS:
            total = Ranks()
            for site in sites:
                documents = embedder.embed(site.texts(question_chars, answer_chars))
                queries = embedder.embed([pair.title for pair in site.pairs])
                total.add(rank_originals(site, documents, queries))
            figures = [*(f"{total.recall(k):.2f}" for k in KS), f"{total.mrr:.2f}"]
            console.print(f"  {name}, {label}: {' '.join(figures)}")
            table.add_row(name, label, *figures)
        table.add_section()
    console.print(table)


# MiniLM's share of the cosine in the blends tried by --blends (the rest is the multilingual
# model's): kb.vectors.AUTO_BLEND_WEIGHTS is the middle of the best plateau.
BLEND_WEIGHTS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def blends(sites: list[Site]) -> None:
    """Semantic-only relevance of MiniLM and the multilingual model together: the weighted
    sum of their cosines (what kb.vectors.blend's vectors give Meilisearch)."""
    minilm, multilingual = create_embedder("minilm"), create_embedder("use-multilingual")
    embedded = []
    for site in sites:
        texts, titles = site.texts(600, 400), [pair.title for pair in site.pairs]
        spanish = spanish_queries(site)
        embedded.append(
            (
                site,
                [minilm.embed(texts), minilm.embed(titles), minilm.embed(spanish)],
                [
                    multilingual.embed(texts),
                    multilingual.embed(titles),
                    multilingual.embed(spanish),
                ],
            )
        )
    table = Table(title="Blends: MiniLM's share of the cosine (the rest: multilingual USE)")
    for column in ("MiniLM weight", "queries", "recall@1", "recall@5", "recall@10", "MRR"):
        table.add_column(column)
    for weight in BLEND_WEIGHTS:
        for label, query_row in (("English titles", 1), ("Spanish titles", 2)):
            total = Ranks()
            for site, first, second in embedded:
                documents = np.hstack([first[0] * np.sqrt(weight), second[0] * np.sqrt(1 - weight)])
                queries = np.hstack(
                    [first[query_row] * np.sqrt(weight), second[query_row] * np.sqrt(1 - weight)]
                )
                total.add(rank_originals(site, documents, queries))
            table.add_row(
                f"{weight:g}",
                label,
                *(f"{total.recall(k):.2f}" for k in KS),
                f"{total.mrr:.2f}",
            )
        table.add_section()
    console.print(table)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Speed, memory and semantic-only relevance of the embedding models."
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--text-variants",
        action="store_true",
        help="compare how much of the question and answer goes into a document's text",
    )
    parser.add_argument(
        "--blends",
        action="store_true",
        help="compare weighted blends of the two models (what SEARCH_MODEL=auto does in English)",
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    # Never a model hub: everything must come from installed packages.
    os.environ["HF_HUB_OFFLINE"] = "1"
    if options.rss_child:
        rss_child(options.rss_child)
        return 0
    exit_cleanly_on_signals()
    folders = [options.data_dir / name for name in SITES]
    missing = [str(folder) for folder in folders if not (folder / "Posts.xml").exists()]
    if missing:
        console.print(f"[red]No dump in {', '.join(missing)}[/red]")
        return 2
    console.print(
        f"Code {code_version()}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
        f"Python loop {calibrate():.0f} ms"
    )
    started = time.perf_counter()
    sites = [load_site(folder) for folder in folders]
    questions, pairs = sum(len(s.questions) for s in sites), sum(len(s.pairs) for s in sites)
    console.print(
        f"Read {questions} questions and {pairs} duplicate pairs "
        f"in {time.perf_counter() - started:.1f} s"
    )
    absent = [
        (site.name, pair.duplicate)
        for site in sites
        for pair in site.pairs
        if (site.name, pair.duplicate) not in SPANISH_TITLES
    ]
    if absent:
        console.print(f"[red]No Spanish title for {absent}[/red]")
        return 2
    if options.text_variants:
        text_variants(options.models, sites)
        return 0
    if options.blends:
        blends(sites)
        return 0
    runs: list[ModelRun] = []
    for name in options.models:
        console.print(f"Measuring {name} ...")
        runs.append(measure_model(name, sites))
    console.print(relevance_table("English: duplicate's title → original", runs, sites, False))
    console.print(
        relevance_table("Spanish title → English original (cross-language)", runs, sites, True)
    )
    console.print(speed_table(runs))
    console.print(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    run_main(main)
