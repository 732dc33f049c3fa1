"""How well and how fast `community.core.language` tells English from Spanish, on questions whose
language we know: the Stack Exchange dumps in the data directory (all English), the synthetic
source behind `community seed` (20% Spanish) and the demo threads.

For each confidence threshold it counts the questions the detector would move to the wrong
language (must stay 0) and those it recognises, from the title alone, the title and the first
60 characters of the body, and what the app looks at (the title and the start of the body).
Then the cost of one detection as the importer pays it (HTML stripping included) and the time
to load the model.

    .venv/bin/python bench/bench_language.py
    .venv/bin/python bench/bench_language.py --synthetic 20000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import REPO_ROOT, console, run_main
from rich.table import Table

from community.core import language
from community.core.markdown import render_markdown, sanitize_html
from community.demo_threads import THREADS
from community.importing.stackexchange import StackExchangeDump
from community.importing.synthetic.source import SyntheticSource

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
THRESHOLDS = (0.9, 0.95, 0.99, 0.999)


@dataclass(frozen=True, slots=True)
class Sample:
    title: str
    body_html: str
    language: str


def samples(data_dir: Path, synthetic: int) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {"Stack Exchange": [], "synthetic": [], "demo": []}
    for folder in sorted(path for path in data_dir.iterdir() if (path / "Posts.xml").exists()):
        for record in StackExchangeDump(folder).questions().records:
            html = sanitize_html(record.body_html or "") or render_markdown(record.body_markdown)
            found["Stack Exchange"].append(Sample(record.title, html, "en"))
    for record in SyntheticSource(synthetic).questions().records:
        found["synthetic"].append(
            Sample(record.title, render_markdown(record.body_markdown), record.locale)
        )
    for spec in THREADS:
        found["demo"].append(Sample(spec["title"], render_markdown(spec["body"]), spec["locale"]))
    return found


def title_only(sample: Sample) -> str:
    return sample.title


def short_body(sample: Sample) -> str:
    return language.post_text(sample.title, sample.body_html)[: len(sample.title) + 61]


def whole(sample: Sample) -> str:
    return language.post_text(sample.title, sample.body_html)


def accuracy(found: dict[str, list[Sample]]) -> Table:
    table = Table(title="Detections by threshold (wrong = moved to the other language)")
    for column in ("text", "threshold", "wrong", "English found", "Spanish found"):
        table.add_column(column, justify="right" if column != "text" else "left")
    everything = [sample for group in found.values() for sample in group]
    english = sum(sample.language == "en" for sample in everything)
    spanish = len(everything) - english
    identifier = language._identifier()
    texts: list[tuple[str, Callable[[Sample], str]]] = [
        ("title", title_only),
        ("title + 60 chars", short_body),
        ("title + body head", whole),
    ]
    for label, make_text in texts:
        scored = []
        for sample in everything:
            text = make_text(sample)
            enough = language._letters(text) >= language.MIN_LETTERS
            detected, probability = identifier.classify(text)
            scored.append((sample.language, detected, probability if enough else 0.0))
        for threshold in THRESHOLDS:
            sure = [(truth, got) for truth, got, p in scored if p >= threshold]
            wrong = sum(truth != got for truth, got in sure)
            found_en = sum(truth == got == "en" for truth, got in sure)
            found_es = sum(truth == got == "es" for truth, got in sure)
            marker = " *" if threshold == language.CONFIDENCE else ""
            table.add_row(
                label,
                f"{threshold}{marker}",
                str(wrong),
                f"{found_en}/{english}",
                f"{found_es}/{spanish}",
            )
    return table


def speed(found: dict[str, list[Sample]]) -> None:
    language._identifier.cache_clear()
    started = time.perf_counter()
    language._identifier()
    console.print(f"Model load: {(time.perf_counter() - started) * 1000:.0f} ms (once per process)")
    for label, group in found.items():
        started = time.perf_counter()
        for sample in group:
            language.detect_post_language(sample.title, sample.body_html, fallback="en")
        each = (time.perf_counter() - started) / max(len(group), 1)
        console.print(f"{label}: {len(group)} questions, {each * 1e6:.0f} µs per detection")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--synthetic", type=int, default=5000, help="synthetic threads (5,000)")
    options = parser.parse_args()
    found = samples(options.data_dir, options.synthetic)
    console.print(
        f"Confidence {language.CONFIDENCE} (*), at least {language.MIN_LETTERS} letters, "
        f"the first {language.HEAD_CHARS} characters."
    )
    console.print(accuracy(found))
    speed(found)
    return 0


if __name__ == "__main__":
    run_main(main)
