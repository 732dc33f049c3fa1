"""Triage entry points: a thread when it is published (`triage_thread`), the asker's follow-ups
(`triage_followup`) and imports in bulk (`triage_many`). Each classifies, places the author in
a segment, applies the priority rules, stores the fields on the thread and the reasons in its
`TriageResult`, and flushes (never commits)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from community.core.clock import utcnow
from community.core.models import Forum, Post, Thread
from crowdservice.models import InteractionType, Priority, Segment, Sentiment, TriageResult
from crowdservice.triage.classifier import Classification, Classifier, default_classifier
from crowdservice.triage.rules import priority_for, rules_for_brand, urgency
from crowdservice.triage.segments import AuthorStats, author_stats, segment_for, segment_from
from crowdservice.triage.sentiment import sentiment_of

BATCH_SIZE = 500
# A follow-up can turn these into a problem or a complaint ("still broken, ridiculous").
_MAY_TURN_SOUR = (InteractionType.QUESTION, InteractionType.PRAISE, InteractionType.SUGGESTION)

Rules = tuple[list[dict[str, Any]], str]  # the rules and where they come from


def needs_response(result: TriageResult | None) -> bool:
    """False only when triage (or staff) decided nobody needs to answer."""
    if result is None:
        return True
    return result.reasons.get("needs_response", True) is not False


def question_body(db: Session, thread: Thread) -> str:
    body = db.scalar(
        select(Post.body_source).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    )
    return body or ""


def brand_id(thread: Thread) -> int:
    return thread.forum.brand_id


def triage_fields(thread: Thread, result: TriageResult | None) -> dict[str, Any]:
    """The thread's triage as stored (what a correction records as before and after)."""
    return {
        "interaction_type": thread.interaction_type,
        "sentiment": thread.sentiment,
        "sentiment_score": thread.sentiment_score,
        "priority": thread.priority,
        "author_segment": thread.author_segment,
        "needs_response": needs_response(result),
    }


def _triage_loaded(
    db: Session,
    thread: Thread,
    body: str,
    result: TriageResult | None,
    segment: tuple[Segment, dict[str, Any]],
    rules: Rules,
    classifier: Classifier,
) -> TriageResult:
    """Classify and store, with everything already loaded (shared by one and many)."""
    kind = thread.kind.value if thread.kind is not None else None
    classification = classifier.classify(
        thread.title, body, locale=thread.locale or "en", kind_hint=kind
    )
    author_segment, segment_reasons = segment
    priority, needs, rule = priority_for(
        classification, author_segment, rules[0], text=f"{thread.title}\n{body}"
    )
    score = round(classification.sentiment_score, 4)
    verdict: dict[str, Any] = {
        "interaction_type": classification.interaction_type.value,
        "sentiment": classification.sentiment.value,
        "sentiment_score": score,
        "author_segment": author_segment.value,
        "priority": priority.value,
        "needs_response": needs,
    }
    reasons: dict[str, Any] = {
        "classification": classification.reasons,
        "segment": segment_reasons,
        "rule": rule,
        "rules_source": rules[1],
        "priority": priority.value,
        "needs_response": needs,
    }
    now = utcnow()
    if result is None:
        result = TriageResult(thread_id=thread.id, classifier=classifier.name)
        db.add(result)
    corrected = result.corrected_at is not None
    if corrected:
        # A correction is never overwritten: the thread keeps the staff's fields, the reasons
        # show what the classifier would say now.
        previous = result.reasons or {}
        reasons["suggested"] = verdict
        reasons["needs_response"] = previous.get("needs_response", True)
        reasons["priority"] = thread.priority
        reasons["rule"] = "staff correction"
        for key in ("corrected_fields", "correction_reason", "followups"):
            if key in previous:
                reasons[key] = previous[key]
    else:
        thread.interaction_type = classification.interaction_type.value
        thread.sentiment = classification.sentiment.value
        thread.sentiment_score = score
        thread.author_segment = author_segment.value
        thread.priority = priority.value
    if thread.author is not None and thread.author.segment != author_segment.value:
        thread.author.segment = author_segment.value
    result.classifier = classifier.name
    result.reasons = reasons
    result.triaged_at = now
    return result


def triage_thread(
    db: Session,
    thread: Thread,
    *,
    classifier: Classifier | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> TriageResult:
    """Classify a thread (title and question), store the fields on the thread and the reasons
    in its TriageResult. `rules` None: the brand's rules, or the defaults. Flushes only."""
    chosen = classifier or default_classifier()
    rule_set = (rules, "given") if rules is not None else rules_for_brand(db, brand_id(thread))
    segment = segment_for(db, thread.author, exclude_thread_id=thread.id)
    result = _triage_loaded(
        db,
        thread,
        question_body(db, thread),
        db.get(TriageResult, thread.id),
        segment,
        rule_set,
        chosen,
    )
    db.flush()
    return result


def triage_followup(
    db: Session,
    thread: Thread,
    post: Post,
    *,
    classifier: Classifier | None = None,
) -> TriageResult | None:
    """The asker posted again: the sentiment is read again from the question and the new post
    (whichever is more negative wins, so an author getting angrier raises the priority). The
    type stays (unless a question, praise or idea turned into a problem or complaint) and so
    does the segment. A staff-corrected priority is never lowered, nor a corrected type or
    sentiment changed. None when the post is not a follow-up by the thread's author."""
    if post.is_question or post.author_id is None or post.author_id != thread.author_id:
        return None
    chosen = classifier or default_classifier()
    result = db.get(TriageResult, thread.id)
    if result is None:
        result = triage_thread(db, thread, classifier=chosen)
    question = question_body(db, thread)
    reclassified = _reclassified(chosen, thread, question, post)
    try:
        segment = Segment(thread.author_segment or Segment.NEW)
    except ValueError:
        segment = Segment.NEW
    rules, _source = rules_for_brand(db, brand_id(thread))
    outcome = priority_for(
        reclassified,
        segment,
        rules,
        text=f"{thread.title}\n{question}\n{post.body_source}",
    )
    result.reasons = _after_followup(thread, result, post, reclassified, outcome)
    result.triaged_at = utcnow()
    db.flush()
    return result


def _reclassified(
    classifier: Classifier, thread: Thread, question: str, post: Post
) -> Classification:
    """The thread's type and sentiment after the asker's follow-up `post`."""
    kind = thread.kind.value if thread.kind is not None else None
    locale = thread.locale or "en"
    combined = classifier.classify(
        thread.title, f"{question}\n\n{post.body_source}", locale=locale, kind_hint=kind
    )
    alone = classifier.classify("", post.body_source, locale=locale, kind_hint=None)
    latest = alone if alone.sentiment_score < combined.sentiment_score else combined
    try:
        kind_now = InteractionType(thread.interaction_type or combined.interaction_type)
    except ValueError:
        kind_now = combined.interaction_type
    sentiment = sentiment_of(latest.sentiment_score)
    if (
        sentiment == Sentiment.NEGATIVE
        and kind_now in _MAY_TURN_SOUR
        and alone.interaction_type in (InteractionType.PROBLEM, InteractionType.COMPLAINT)
    ):
        # "Still broken after a week, ridiculous": the question (or praise, or idea) has
        # become a problem or a complaint.
        kind_now = alone.interaction_type
    if kind_now == InteractionType.COMPLAINT and sentiment != Sentiment.NEGATIVE:
        sentiment = Sentiment.NEGATIVE
    return Classification(kind_now, sentiment, latest.sentiment_score, {"followup": latest.reasons})


def _after_followup(
    thread: Thread,
    result: TriageResult,
    post: Post,
    reclassified: Classification,
    outcome: tuple[Priority, bool, str],
) -> dict[str, Any]:
    """Store the follow-up's verdict on the thread (what staff corrected stays, a corrected
    priority is only raised) and return the result's reasons with the follow-up recorded."""
    priority, needs, rule = outcome
    previous = dict(result.reasons or {})
    corrected = result.corrected_at is not None
    corrected_fields = set(previous.get("corrected_fields", []))
    score = round(reclassified.sentiment_score, 4)
    if not corrected or "sentiment" not in corrected_fields:
        thread.sentiment = reclassified.sentiment.value
        thread.sentiment_score = score
    if not corrected or "interaction_type" not in corrected_fields:
        thread.interaction_type = reclassified.interaction_type.value
    staff_needs = previous.get("needs_response", True) is not False
    if not corrected or urgency(priority.value, needs) > urgency(thread.priority, staff_needs):
        thread.priority = priority.value
        previous["needs_response"] = needs
        previous["priority"] = priority.value
        previous["rule"] = rule
    followups = list(previous.get("followups", []))[-9:]
    followups.append({
        "post_id": post.id,
        "sentiment": reclassified.sentiment.value,
        "sentiment_score": score,
        "priority": priority.value,
        "needs_response": needs,
        "rule": rule,
    })  # fmt: skip
    previous["followups"] = followups
    return previous


def _batches(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def triage_many(
    db: Session,
    thread_ids: list[int],
    *,
    classifier: Classifier | None = None,
    history_excludes: Select[Any] | None = None,
) -> int:
    """Bulk triage (imports): threads, questions, results and author statistics are loaded a
    batch of 500 at a time in a handful of queries, each brand's rules once. Flushes only;
    returns how many threads were triaged.

    `history_excludes` selects threads that arrive together with these (an import's own):
    they are not the authors' history, so triaging them again (a resumed import) sees what
    the first time saw."""
    chosen = classifier or default_classifier()
    brand_rules: dict[int, Rules] = {}
    # An author's statistics once per call, not once per batch: imports have prolific authors
    # in every batch, and the grouped counts are the slow part.
    known_stats: dict[int, AuthorStats] = {}
    done = 0
    for batch in _batches(list(dict.fromkeys(thread_ids)), BATCH_SIZE):
        threads = db.scalars(
            select(Thread)
            .where(Thread.id.in_(batch))
            .options(selectinload(Thread.forum), selectinload(Thread.author))
            .order_by(Thread.id)
        ).all()
        # .all(): a Result has keys(), so dict() would take it for a mapping.
        bodies: dict[int, str] = dict(
            db.execute(
                select(Post.thread_id, Post.body_source).where(
                    Post.thread_id.in_(batch), Post.is_question.is_(True)
                )
            ).all()
        )
        results = {
            result.thread_id: result
            for result in db.scalars(select(TriageResult).where(TriageResult.thread_id.in_(batch)))
        }
        author_ids = sorted({thread.author_id for thread in threads if thread.author_id})
        known_stats.update(
            author_stats(
                db,
                [i for i in author_ids if i not in known_stats],
                history_excludes=history_excludes,
            )
        )
        stats = known_stats
        for thread in threads:
            forum: Forum = thread.forum
            if forum.brand_id not in brand_rules:
                brand_rules[forum.brand_id] = rules_for_brand(db, forum.brand_id)
            author = thread.author
            if author is None:
                segment = segment_for(db, None)
            else:
                segment = segment_from(author, stats[author.id], thread.id)
            _triage_loaded(
                db,
                thread,
                bodies.get(thread.id, ""),
                results.get(thread.id),
                segment,
                brand_rules[forum.brand_id],
                chosen,
            )
            done += 1
        db.flush()
    return done
