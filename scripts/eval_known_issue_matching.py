"""How the known-issue matcher's meaning test behaves on real questions (it prints figures; it is
not a test).

crowdservice.known_issues.matching matches a typed title (or a new thread's title) with an
announcement when the cosine of their vectors reaches kb.duplicates.DUPLICATE_THRESHOLD, the
threshold calibrated for "possible duplicate". No brand's announcements are public, so the
Stack Exchange dumps stand in: every duplicate pair (PostLinks LinkTypeId=3, labels made by the
sites' moderators) becomes an announcement written from the ORIGINAL question (its title, then
the first 500 characters of its body as the summary, as matching.issue_text builds it) and a
customer typing the DUPLICATE's title.

- recall: pairs whose duplicate title reaches the threshold against its original's announcement
  (people who would see the announcement first while asking);
- false matches per 1,000: for each announcement, every other question title of the site that
  reaches the threshold although moderators marked it a duplicate of something else or of
  nothing (people shown an announcement that is not theirs), per 1,000 questions asked. An
  upper bound: some are unmarked duplicates, as scripts/calibrate_duplicates.py found by eye.

    .venv/bin/python scripts/eval_known_issue_matching.py [--data ../shared/data] [--sweep]

--sweep also prints other thresholds, to see the trade-off; the matcher keeps the duplicate
threshold (one judgement, calibrated once) rather than a point picked on 35 pairs.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from crowdservice.known_issues.matching import ISSUE_SUMMARY_CHARS  # noqa: E402
from kb.documents import plain_text  # noqa: E402
from kb.duplicates import DUPLICATE_THRESHOLD  # noqa: E402
from kb.embeddings import get_embedder  # noqa: E402
from scripts.check_real import iter_rows  # noqa: E402
from scripts.relevance import dump_folders, read_pairs  # noqa: E402

# The registry's names of the models that have a calibrated threshold (by their vector key).
MODELS = {"minilm": "minilm", "use_multilingual": "use-multilingual"}
SWEEP = (0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)


def _questions(folder: Path) -> dict[int, tuple[str, str]]:
    """Every question of the dump: id -> (title, body as HTML)."""
    return {
        int(row["Id"]): (row.get("Title", ""), row.get("Body", ""))
        for row in iter_rows(folder / "Posts.xml")
        if row.get("PostTypeId") == "1" and row.get("Id", "").isdigit()
    }


def _announcement(title: str, body: str) -> str:
    summary = plain_text(body, ISSUE_SUMMARY_CHARS)
    return f"{title}. {summary}".strip() if summary else title


def main(
    data: Annotated[Path, typer.Option(help="Folder of Stack Exchange dumps")] = REPO_ROOT.parent
    / "shared"
    / "data",
    sweep: Annotated[bool, typer.Option(help="Also print other thresholds")] = False,
) -> None:
    folders = dump_folders(data)
    if not folders:
        raise typer.BadParameter(f"no dumps in {data}")
    for key, name in MODELS.items():
        embedder = get_embedder(name)
        calibrated = DUPLICATE_THRESHOLD[key]
        started = time.perf_counter()
        # Per announcement: the cosines of its marked duplicates and of every other question.
        positives: list[float] = []
        negatives: list[np.ndarray] = []
        for folder in folders:
            questions = _questions(folder)
            pairs = [pair for pair in read_pairs(folder) if pair.original in questions]
            if not pairs:
                continue
            ids = sorted(questions)
            titles = embedder.embed([questions[qid][0] for qid in ids])
            row_of = {qid: row for row, qid in enumerate(ids)}
            marked: dict[int, set[int]] = defaultdict(set)  # original -> its marked duplicates
            for pair in pairs:
                marked[pair.original].add(pair.duplicate)
            originals = sorted(marked)
            announcements = embedder.embed([_announcement(*questions[qid]) for qid in originals])
            cosines = titles @ announcements.T  # questions x announcements
            for column, original in enumerate(originals):
                positives.extend(float(cosines[row_of[dup], column]) for dup in marked[original])
                others = np.ones(len(ids), dtype=bool)
                for qid in marked[original] | {original}:
                    others[row_of[qid]] = False
                negatives.append(cosines[others, column])
        seconds = time.perf_counter() - started
        unrelated = np.concatenate(negatives)
        shown = sorted({calibrated, *(SWEEP if sweep else ())}, reverse=True)
        for threshold in shown:
            found = sum(cosine >= threshold for cosine in positives)
            false_matches = int(np.count_nonzero(unrelated >= threshold))
            recall = found / max(len(positives), 1)
            per_thousand = 1000 * false_matches / max(len(unrelated), 1)
            mark = " (the matcher's)" if threshold == calibrated else ""
            print(
                f"{key:17} threshold {threshold:.3f}{mark}: recall {found}/{len(positives)} "
                f"({recall:.2f}); false matches {per_thousand:.2f} per 1,000 questions "
                f"({false_matches} of {len(unrelated):,}); {seconds:.0f} s"
            )


if __name__ == "__main__":
    typer.run(main)
