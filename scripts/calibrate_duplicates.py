"""Calibrate the "possible duplicate" threshold (kb.duplicates.DUPLICATE_THRESHOLD) on real data.

Imports every Stack Exchange dump of the data folder (default ../shared/data) as its own brand
into a throwaway database (PostgreSQL on TEST_DATABASE_URL's server, or SQLite with --sqlite)
and a Meilisearch of its own, with the project's importer, and lets the worker compute every
thread's vectors for both models ("auto": minilm and use_multilingual), as
scripts/eval_relevance.py does. Then:

- every question is replayed as if just published: its vector is computed from what the worker
  embeds at that moment (title and question, no answer yet), and compared by cosine with the
  stored vectors of the threads asked before it that may be an original (kb.duplicates:
  visible, not closed except as resolved; a thread closed as a duplicate stands for its
  original). The closest ones at or above a threshold, at most kb.duplicates.MAX_SUGGESTIONS,
  are the flags staff would see.
- for every duplicate pair (PostLinks LinkTypeId=3, both ends questions; scripts/relevance.py),
  the duplicate's cosine to its original and to its nearest other thread.

Per model and threshold it prints precision (flags pointing at a marked original, over every
flag raised on every question: a flag on a question never closed as a duplicate counts as
wrong, although some are duplicates nobody marked) and recall (pairs whose original is
flagged). Brute force over the stored vectors stands for the worker's Meilisearch top 10: the
same cosine ranking, exact. It prints figures; it is not a test.

    .venv/bin/python scripts/calibrate_duplicates.py
    .venv/bin/python scripts/calibrate_duplicates.py --sqlite --details
    .venv/bin/python scripts/calibrate_duplicates.py --cache /tmp/dups.npz --audit  # reruns: fast
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    bench_settings,
    code_version,
    console,
    exit_cleanly_on_signals,
    meilisearch_server,
    throwaway_postgres,
    workspace,
)
from community.core import migrate  # noqa: E402
from community.core.db import make_engine, make_session_factory  # noqa: E402
from community.core.models import Brand, Forum, Post, Thread, Visibility  # noqa: E402
from kb import duplicates, vector_computing, vectors  # noqa: E402
from kb.duplicate_models import DuplicateSuggestion  # noqa: E402
from scripts.relevance import (  # noqa: E402
    DEFAULT_DATA_DIR,
    ImportedSite,
    Pair,
    compute_vectors,
    dump_folders,
    import_dump,
    read_pairs,
)

MODELS = ("minilm", "use-multilingual")
THRESHOLDS = tuple(round(0.5 + 0.025 * step, 3) for step in range(19))  # 0.50 … 0.95


@contextmanager
def database_url(sqlite: bool, admin_url: str, workdir: Path) -> Iterator[str]:
    if sqlite:
        yield f"sqlite:///{workdir / 'calibrate.db'}"
        return
    with throwaway_postgres(admin_url, "calibrate_duplicates") as database:
        yield database.sqlalchemy_url


# --- one brand's threads and vectors --------------------------------------------------------------


@dataclass
class BrandThreads:
    """A brand's threads in one order, with what the replay needs of each."""

    slug: str
    ids: list[int]
    titles: list[str]
    created: list[datetime]
    may_be_original: np.ndarray  # bool per thread (kb.duplicates.may_be_original)
    checked: np.ndarray  # bool per thread: a kind the worker checks
    published_texts: list[str]  # what the worker embeds when the question is published
    stored: dict[str, np.ndarray] = field(default_factory=dict)  # model key -> (n, d), unit rows
    published: dict[str, np.ndarray] = field(default_factory=dict)  # model key -> (n, d)

    def position(self) -> dict[int, int]:
        return {thread_id: index for index, thread_id in enumerate(self.ids)}


def load_brand(db: Session, slug: str, keys: Sequence[str]) -> BrandThreads:
    threads = list(
        db.scalars(
            select(Thread)
            .join(Forum, Forum.id == Thread.forum_id)
            .join(Brand, Brand.id == Forum.brand_id)
            .where(Brand.slug == slug)
            .order_by(Thread.id)
        )
    )
    questions = {
        post.thread_id: post
        for post in db.scalars(
            select(Post).where(
                Post.thread_id.in_([thread.id for thread in threads]),
                Post.is_question.is_(True),
                Post.visibility == Visibility.VISIBLE,
            )
        )
    }
    loaded = BrandThreads(
        slug=slug,
        ids=[thread.id for thread in threads],
        titles=[thread.title for thread in threads],
        created=[thread.created_at for thread in threads],
        may_be_original=np.array([duplicates.may_be_original(t) for t in threads], dtype=bool),
        checked=np.array([t.kind in duplicates.CHECKED_KINDS for t in threads], dtype=bool),
        published_texts=[
            vectors.thread_text(thread, [questions[thread.id]] if thread.id in questions else [])
            for thread in threads
        ],
    )
    subjects = [vectors.thread_subject(thread_id) for thread_id in loaded.ids]
    rows = vectors.stored(db, subjects, list(keys))
    for key in keys:
        matrix = []
        for subject in subjects:
            row = rows.get((subject, key))
            if row is None:
                raise RuntimeError(f"{subject} has no {key} vector: the worker did not finish")
            matrix.append(np.frombuffer(row.vector, dtype="<f4"))
        loaded.stored[key] = unit_rows(np.vstack(matrix).astype(np.float64))
    return loaded


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


# --- the replay --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """For each question (row) of a brand, every earlier possible original ranked by cosine."""

    brand: BrandThreads
    model: str
    similarity: np.ndarray  # (n, n): question i's published vector · thread j's stored vector
    allowed: np.ndarray  # (n, n) bool: j may be flagged for i (asked before, may be original)

    def flags(self, index: int, threshold: float) -> list[int]:
        """Positions of the threads staff would see flagged for question `index`."""
        if not self.brand.checked[index]:
            return []
        row = np.where(self.allowed[index], self.similarity[index], -np.inf)
        order = np.argsort(-row, kind="stable")[: duplicates.MAX_SUGGESTIONS]
        return [int(j) for j in order if row[j] >= threshold]

    def nearest_other(self, index: int, excluded: set[int]) -> tuple[float, int | None]:
        """The closest earlier possible original that is none of `excluded`."""
        row = np.where(self.allowed[index], self.similarity[index], -np.inf)
        for j in np.argsort(-row, kind="stable"):
            if not np.isfinite(row[j]):
                break
            if int(j) not in excluded:
                return float(row[j]), int(j)
        return float("nan"), None


def replay(brand: BrandThreads, model: str) -> Replay:
    created = np.array([value.timestamp() for value in brand.created])
    earlier = created[None, :] < created[:, None]
    allowed = earlier & brand.may_be_original[None, :]
    np.fill_diagonal(allowed, False)
    similarity = brand.published[model] @ brand.stored[model].T
    return Replay(brand, model, similarity, allowed)


@dataclass(frozen=True)
class PairCase:
    pair: Pair
    brand: str
    duplicate: int  # position in the brand's threads
    original: int
    to_original: float
    to_other: float  # nearest earlier possible original that is not one of its originals
    other: int | None
    reachable: bool  # the original was asked before the duplicate and may be an original


@dataclass(frozen=True)
class Row:
    threshold: float
    flags: int
    correct: int
    flagged_questions: int
    questions: int
    found: int
    pairs: int
    dup_flags: int
    dup_correct: int
    by_site: dict[str, tuple[int, int]]  # brand -> (right flags, flags)

    @property
    def precision(self) -> float:
        return self.correct / self.flags if self.flags else float("nan")

    @property
    def recall(self) -> float:
        return self.found / self.pairs if self.pairs else float("nan")

    @property
    def dup_precision(self) -> float:
        return self.dup_correct / self.dup_flags if self.dup_flags else float("nan")


def measure(
    replays: Sequence[Replay], originals: dict[tuple[str, int], set[int]], threshold: float
) -> Row:
    """Every question of every brand at one threshold; `originals` maps (brand, question
    position) to the positions of its marked originals."""
    flags = correct = flagged = questions = found = pairs = dup_flags = dup_correct = 0
    by_site: dict[str, tuple[int, int]] = {}
    for item in replays:
        slug = item.brand.slug
        before = (correct, flags)
        for index in range(len(item.brand.ids)):
            if not item.brand.checked[index]:
                continue
            questions += 1
            raised = item.flags(index, threshold)
            marked = originals.get((slug, index), set())
            right = sum(1 for j in raised if j in marked)
            flags += len(raised)
            correct += right
            flagged += bool(raised)
            if marked:
                pairs += len(marked)
                found += right
                dup_flags += len(raised)
                dup_correct += right
        by_site[slug] = (correct - before[0], flags - before[1])
    return Row(
        threshold, flags, correct, flagged, questions, found, pairs, dup_flags, dup_correct, by_site
    )


# --- printing ------------------------------------------------------------------------------------


def pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.2f}"


def print_thresholds(model: str, rows: Sequence[Row], chosen: float | None) -> None:
    table = Table(
        title=f"{model}: flags per threshold (every question replayed)", title_justify="left"
    )
    for name in (
        "threshold",
        "flags",
        "right",
        "precision",
        "recall",
        "originals found",
        "questions flagged",
        "precision on duplicates",
        "right / flags per site",
    ):
        table.add_column(name, justify="right")
    for row in rows:
        marked = chosen is not None and abs(row.threshold - chosen) < 1e-9
        table.add_row(
            f"{row.threshold:.3f}" + (" ←" if marked else ""),
            str(row.flags),
            str(row.correct),
            pct(row.precision),
            pct(row.recall),
            f"{row.found} of {row.pairs}",
            f"{row.flagged_questions} of {row.questions}",
            pct(row.dup_precision),
            " ".join(f"{site[:4]} {right}/{flags}" for site, (right, flags) in row.by_site.items()),
            style="bold" if marked else None,
        )
    console.print(table)


def print_pairs(model: str, cases: Sequence[PairCase], brands: dict[str, BrandThreads]) -> None:
    table = Table(title=f"{model}: each pair, cosine of the duplicate to …", title_justify="left")
    table.add_column("site", no_wrap=True, max_width=10, overflow="ellipsis")
    table.add_column("duplicate", no_wrap=True, max_width=46, overflow="ellipsis")
    table.add_column("its original", justify="right")
    table.add_column("nearest other", justify="right")
    table.add_column("note")
    for case in sorted(cases, key=lambda c: -c.to_original):
        brand = brands[case.brand]
        table.add_row(
            case.brand,
            brand.titles[case.duplicate],
            f"{case.to_original:.3f}",
            pct(case.to_other),
            ""
            if case.reachable
            else "cannot be flagged: original asked later, closed or unanswered",
        )
    console.print(table)


def print_summary(model: str, cases: Sequence[PairCase]) -> None:
    to_original = np.array([case.to_original for case in cases])
    to_other = np.array([case.to_other for case in cases if not np.isnan(case.to_other)])
    wins = sum(1 for case in cases if case.to_original > case.to_other)
    console.print(
        f"[bold]{model}[/]: cosine to the original median {np.median(to_original):.3f} "
        f"(quartiles {np.quantile(to_original, 0.25):.3f}–{np.quantile(to_original, 0.75):.3f}); "
        f"to the nearest other thread median {np.median(to_other):.3f} "
        f"(quartiles {np.quantile(to_other, 0.25):.3f}–{np.quantile(to_other, 0.75):.3f}); "
        f"the original is the nearest for {wins} of {len(cases)} pairs"
    )


def print_false_alarms(replays: Sequence[Replay], originals: dict[tuple[str, int], set[int]],
                       threshold: float, limit: int = 15) -> None:  # fmt: skip
    table = Table(title=f"{replays[0].model}: wrong flags at {threshold:.3f} (to judge by eye)",
                  title_justify="left")  # fmt: skip
    table.add_column("cos", justify="right")
    table.add_column("question", max_width=60)
    table.add_column("flagged thread", max_width=60)
    found: list[tuple[float, str, str]] = []
    for item in replays:
        for index in range(len(item.brand.ids)):
            marked = originals.get((item.brand.slug, index), set())
            for j in item.flags(index, threshold):
                if j not in marked:
                    found.append(
                        (float(item.similarity[index, j]), item.brand.titles[index],
                         item.brand.titles[j])
                    )  # fmt: skip
    for score, question, flagged in sorted(found, reverse=True)[:limit]:
        table.add_row(f"{score:.3f}", question, flagged)
    console.print(table)


def print_audit(replays: Sequence[Replay], threshold: float) -> None:
    """Every flag at `threshold` in a fixed shuffled order, titles only: judged by eye without
    the score or the moderators' label in view."""
    rows = [
        (item.brand.slug, item.brand.titles[index], item.brand.titles[j])
        for item in replays
        for index in range(len(item.brand.ids))
        for j in item.flags(index, threshold)
    ]
    random.Random(7).shuffle(rows)  # noqa: S311 - an order, not a secret
    table = Table(
        title=f"{replays[0].model}: every flag at {threshold:.3f}, shuffled", title_justify="left"
    )
    for name in ("#", "site", "new question", "flagged thread"):
        table.add_column(name, justify="right" if name == "#" else "left")
    for number, (site, question, flagged) in enumerate(rows, start=1):
        table.add_row(str(number), site, question, flagged)
    console.print(table)


# --- the run -------------------------------------------------------------------------------------


def main(
    data_dir: Annotated[
        Path, typer.Option(help="Folder with one Stack Exchange dump per subfolder")
    ] = DEFAULT_DATA_DIR,
    sqlite: Annotated[
        bool, typer.Option("--sqlite", help="A throwaway SQLite file instead of PostgreSQL")
    ] = False,
    database_server: Annotated[
        str,
        typer.Option(
            "--database-url",
            help="PostgreSQL admin URL where the throwaway database is created and dropped "
            "(default: TEST_DATABASE_URL, else the local server)",
        ),
    ] = "",
    details: Annotated[
        bool,
        typer.Option("--details", help="Also print every pair and the wrong flags at the choice"),
    ] = False,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            help="Also list every flag at the chosen threshold, shuffled, with no score or "
            "label: for judging by eye which are duplicates",
        ),
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep the threads and vectors in this .npz file and reuse them on the next run "
            "(no import, no model run): for trying thresholds"
        ),
    ] = None,
) -> None:
    """Measure how well a cosine threshold flags a new question's original, on real data."""
    exit_cleanly_on_signals()
    started = time.monotonic()
    folders = dump_folders(data_dir.resolve())
    if not folders:
        console.print(f"[bold red]error:[/] no Stack Exchange dumps (Posts.xml) in {data_dir}")
        raise typer.Exit(1)
    pairs = [pair for folder in folders for pair in read_pairs(folder)]
    console.print(f"{len(pairs)} duplicate pairs in {len(folders)} dumps")
    if cache is not None and cache.exists():
        brands, keys, ends = load_cache(cache)
        console.print(f"Threads and vectors from {cache}")
    else:
        brands, keys, ends = gather(folders, pairs, sqlite, database_server)
        if cache is not None:
            save_cache(cache, brands, keys, ends)
    analyse(brands, keys, ends, details=details, audit=audit)
    console.print(
        f"code {code_version()}, {'SQLite' if sqlite else 'PostgreSQL'}; "
        f"{time.monotonic() - started:.0f} s in all"
    )


@dataclass(frozen=True)
class PairEnds:
    """A pair and the threads its two questions became."""

    pair: Pair
    brand: str
    duplicate: int  # thread ids
    original: int


def gather(
    folders: Sequence[Path], pairs: Sequence[Pair], sqlite: bool, database_server: str
) -> tuple[dict[str, BrandThreads], list[str], list[PairEnds]]:
    """Import the dumps, let the worker compute the vectors, load what the replay needs."""
    admin_url = database_server or os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
    with ExitStack() as stack:
        workdir = stack.enter_context(workspace("calibrate_duplicates_"))
        server = stack.enter_context(meilisearch_server(workdir))
        url = stack.enter_context(database_url(sqlite, admin_url, workdir))
        migrate.upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        session_factory = make_session_factory(engine)
        settings = bench_settings(
            url,
            workdir / "instance",
            meili_url=server.url,
            meili_master_key=server.master_key,
            meili_index_prefix="calibrate_",
            search_model="auto",
        )
        from kb.search import SearchEngine

        writer = SearchEngine(settings)
        imported: list[ImportedSite] = []
        for folder in folders:
            console.print(f"Importing {folder.name} …")
            imported.append(import_dump(session_factory, folder, writer))
        console.print("Computing the stored vectors (the worker, both models) …")
        run = compute_vectors(session_factory, settings)
        console.print(f"{run.documents} documents in {run.seconds:.0f} s")
        made_for_imports = count_suggestions(session_factory)
        console.print(
            f"suggestions the worker made for imported threads: {made_for_imports} (expected 0)"
        )
        brands, keys = load(session_factory, imported, settings.search_model)
    sites = {site.folder.name: site for site in imported}
    ends = [
        PairEnds(
            pair,
            sites[pair.site].brand,
            sites[pair.site].threads[pair.duplicate],
            sites[pair.site].threads[pair.original],
        )
        for pair in pairs
    ]
    return brands, keys, ends


def analyse(
    brands: dict[str, BrandThreads],
    keys: Sequence[str],
    ends: Sequence[PairEnds],
    *,
    details: bool,
    audit: bool,
) -> None:
    positions = {slug: brand.position() for slug, brand in brands.items()}
    originals: dict[tuple[str, int], set[int]] = {}
    for end in ends:
        duplicate = positions[end.brand][end.duplicate]
        originals.setdefault((end.brand, duplicate), set()).add(positions[end.brand][end.original])

    for key in keys:
        replays = [replay(brand, key) for brand in brands.values()]
        by_brand = {item.brand.slug: item for item in replays}
        cases = []
        for end in ends:
            item = by_brand[end.brand]
            duplicate = positions[end.brand][end.duplicate]
            original = positions[end.brand][end.original]
            other, other_index = item.nearest_other(duplicate, originals[(end.brand, duplicate)])
            cases.append(
                PairCase(
                    end.pair,
                    end.brand,
                    duplicate,
                    original,
                    float(item.similarity[duplicate, original]),
                    other,
                    other_index,
                    bool(item.allowed[duplicate, original]),
                )
            )
        chosen = duplicates.DUPLICATE_THRESHOLD.get(key)
        rows = [measure(replays, originals, threshold) for threshold in THRESHOLDS]
        print_thresholds(key, rows, chosen)
        print_summary(key, cases)
        unreachable = sum(1 for case in cases if not case.reachable)
        console.print(
            f"{unreachable} of {len(cases)} originals cannot be flagged (asked after their "
            "duplicate, closed for another reason or unanswered): recall counts them as missed"
        )
        if details:
            print_pairs(key, cases, brands)
            if chosen is not None:
                print_false_alarms(replays, originals, chosen)
        if audit and chosen is not None:
            print_audit(replays, chosen)


def count_suggestions(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as db:
        return int(db.scalar(select(func.count()).select_from(DuplicateSuggestion)) or 0)


def load(
    session_factory: sessionmaker[Session], imported: Sequence[ImportedSite], default_model: str
) -> tuple[dict[str, BrandThreads], list[str]]:
    """Each brand's threads and stored vectors, and the published-time vectors computed here
    with the same models the worker used."""
    brands: dict[str, BrandThreads] = {}
    specs: list[vectors.ModelSpec] = []
    with session_factory() as db:
        for site in imported:
            row = db.scalar(select(Brand).where(Brand.slug == site.brand))
            assert row is not None
            specs = vectors.model_specs(row, default_model)
            brands[site.brand] = load_brand(db, site.brand, [spec.key for spec in specs])
    for spec in specs:
        console.print(f"Embedding every question as published ({spec.key}) …")
        began = time.monotonic()
        embedder = spec.embedder()
        for brand in brands.values():
            computed = []
            for start in range(0, len(brand.published_texts), vector_computing.EMBED_BATCH):
                batch = brand.published_texts[start : start + vector_computing.EMBED_BATCH]
                computed.append(np.asarray(embedder.embed(batch), dtype=np.float64))
            brand.published[spec.key] = unit_rows(np.vstack(computed))
        console.print(f"  {time.monotonic() - began:.0f} s")
    if [spec.name for spec in specs] != list(MODELS):
        console.print(f"[yellow]models: {[spec.name for spec in specs]} (expected {MODELS})[/]")
    return brands, [spec.key for spec in specs]


def save_cache(
    path: Path, brands: dict[str, BrandThreads], keys: Sequence[str], ends: Sequence[PairEnds]
) -> None:
    arrays: dict[str, np.ndarray] = {
        "brands": np.array(list(brands)),
        "keys": np.array(list(keys)),
        "pairs": np.array(
            [
                [
                    e.pair.site,
                    str(e.pair.duplicate),
                    str(e.pair.original),
                    e.pair.title,
                    e.brand,
                    str(e.duplicate),
                    str(e.original),
                ]
                for e in ends
            ]
        ),
    }
    for slug, brand in brands.items():
        arrays[f"{slug}/ids"] = np.array(brand.ids, dtype=np.int64)
        arrays[f"{slug}/titles"] = np.array(brand.titles)
        arrays[f"{slug}/created"] = np.array([value.timestamp() for value in brand.created])
        arrays[f"{slug}/may_be_original"] = brand.may_be_original
        arrays[f"{slug}/checked"] = brand.checked
        for key in keys:
            arrays[f"{slug}/stored/{key}"] = brand.stored[key].astype(np.float32)
            arrays[f"{slug}/published/{key}"] = brand.published[key].astype(np.float32)
    with path.open("wb") as file:
        np.savez_compressed(file, allow_pickle=False, **arrays)
    console.print(f"Threads and vectors kept in {path}")


def load_cache(path: Path) -> tuple[dict[str, BrandThreads], list[str], list[PairEnds]]:
    with np.load(path, allow_pickle=False) as data:
        keys = [str(key) for key in data["keys"]]
        brands: dict[str, BrandThreads] = {}
        for slug in (str(name) for name in data["brands"]):
            brand = BrandThreads(
                slug=slug,
                ids=[int(value) for value in data[f"{slug}/ids"]],
                titles=[str(value) for value in data[f"{slug}/titles"]],
                created=[datetime.fromtimestamp(float(v), UTC) for v in data[f"{slug}/created"]],
                may_be_original=data[f"{slug}/may_be_original"],
                checked=data[f"{slug}/checked"],
                published_texts=[],
            )
            for key in keys:
                brand.stored[key] = data[f"{slug}/stored/{key}"].astype(np.float64)
                brand.published[key] = data[f"{slug}/published/{key}"].astype(np.float64)
            brands[slug] = brand
        ends = [
            PairEnds(Pair(site, int(dup), int(orig), title), brand, int(dup_id), int(orig_id))
            for site, dup, orig, title, brand, dup_id, orig_id in data["pairs"]
        ]
    return brands, keys, ends


if __name__ == "__main__":
    typer.run(main)
