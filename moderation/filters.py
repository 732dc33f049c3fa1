"""Screening new posts before anyone sees them. Explainable: every hold says why in words a
moderator can check ("3 links from a trust-level-0 account; matched blocked pattern 'free
crypto'"). Caught posts are held in the pending queue, never thrown away. A blocked pattern in
log-only mode records what it would have caught without holding anything.

Admins' regular expressions run on RE2, whose matching time grows linearly with the text: a
backtracking engine (Python's re) takes seconds on `^(a+)+$` against 27 characters, inside the
post's write transaction. RE2 has no back-references or look-around; such patterns are refused
when saved, and any already stored are skipped (and logged) rather than stop posting."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import re2
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.i18n import ngettext
from community.core.models import Brand, Forum, ModerationPolicy, Post, User, Visibility
from community.core.policy import is_staff
from community.threads import body_fingerprint
from moderation import trust
from moderation.models import BlockedPattern, FilterHit, FilterMode

logger = logging.getLogger(__name__)

_LINK = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]]+", re.IGNORECASE)
_IMAGE = re.compile(r"!\[[^\]]*\]\(")
REPEAT_WINDOW = timedelta(hours=24)
BURST_WINDOW = timedelta(minutes=10)
BURST_POSTS = 3
NEW_ACCOUNT = timedelta(hours=24)


@dataclass
class Screening:
    reasons: list[str] = field(default_factory=list)
    hits: list[tuple[BlockedPattern, str, bool]] = field(default_factory=list)
    # Reasons to look at the account itself (bursts): it goes to the reported-accounts queue.
    account_reasons: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return bool(self.reasons)


def _re2_options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    # RE2 would print every refused pattern to stderr; we say it once, in our log, instead.
    options.log_errors = False
    return options


_RE2_OPTIONS = _re2_options()


def _re2_problem(text: str) -> str | None:
    try:
        re2.compile(text, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    except UnicodeError:
        return "not valid UTF-8"
    return None


def regex_problem(text: str) -> str | None:
    """Why a blocked pattern typed as a regular expression cannot be used, in words for the
    admin; None when it can."""
    problem = _re2_problem(text)
    if problem is None:
        return None
    try:
        re.compile(text)  # only to describe a syntax error as Python users know it
    except re.error as exc:
        return _("That is not a valid regular expression: %(problem)s.") % {"problem": exc}
    return _(
        "The filters cannot run this regular expression (%(problem)s): back-references and "
        "look-ahead or look-behind are not supported, so that every pattern runs in linear time."
    ) % {"problem": problem}


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Any | None:
    """A stored pattern compiled for RE2 (cached: patterns change rarely, posts often), or
    None, logged once per process, if RE2 refuses it (stored before patterns were checked)."""
    problem = _re2_problem(text)
    if problem is not None:
        logger.warning("blocked pattern “%s” is skipped: RE2 cannot run it (%s)", text, problem)
        return None
    return re2.compile(text, _RE2_OPTIONS)


def _matches(pattern: BlockedPattern, text: str) -> str | None:
    if pattern.is_regex:
        compiled = _compiled(pattern.pattern)
        found = compiled.search(text) if compiled is not None else None
        return str(found.group(0)) if found else None
    index = text.lower().find(pattern.pattern.lower())
    return text[index : index + len(pattern.pattern)] if index >= 0 else None


def add_pattern(
    db: Session,
    admin: User,
    brand: Brand,
    pattern: str,
    *,
    is_regex: bool,
    mode: str,
    ip: str | None = None,
) -> BlockedPattern:
    """An admin blocks a word, phrase or regular expression; refused with the reason (and
    nothing stored) when it is empty, cannot run, or the mode is unknown."""
    text = pattern.strip()[:200]
    if not text:
        raise FormErrors({"pattern": _("Write the word, phrase or pattern.")})
    problem = regex_problem(text) if is_regex else None
    if problem is not None:
        raise FormErrors({"pattern": problem})
    if mode not in FilterMode._value2member_map_:
        raise FormErrors({"mode": _("Choose one of the offered options.")})
    created = BlockedPattern(
        brand_id=brand.id,
        pattern=text,
        is_regex=is_regex,
        mode=FilterMode(mode),
        created_by_id=admin.id,
    )
    db.add(created)
    db.flush()
    record_audit(
        db, actor=admin, action="filter.added", target_type="brand", target_id=brand.id,
        after={"pattern": text, "regex": is_regex, "mode": mode}, ip=ip,
    )  # fmt: skip
    return created


# Every new post is screened with these, built once (building a statement and its cache key costs
# more than running it). Parameters: author_id, exclude_id (the screened post, if stored, is not
# its own earlier post), and as named.
_SINCE = bindparam("since", type_=Post.created_at.type)
_OTHER_POSTS = (Post.author_id == bindparam("author_id"), Post.id != bindparam("exclude_id"))
_EARLIER_POST = select(Post.id).where(*_OTHER_POSTS, Post.visibility == Visibility.VISIBLE).limit(1)
_REPEAT = (
    select(Post.created_at)
    .where(
        *_OTHER_POSTS,
        Post.body_fingerprint == bindparam("fingerprint"),
        Post.created_at >= _SINCE,
        Post.visibility.in_([Visibility.VISIBLE, Visibility.PENDING]),
    )
    .order_by(Post.created_at.desc())
    .limit(1)
)
_RECENT_POSTS = (
    select(func.count()).select_from(Post).where(*_OTHER_POSTS, Post.created_at >= _SINCE)
)
_PATTERNS = select(BlockedPattern).where(BlockedPattern.brand_id == bindparam("brand_id"))


def screen(
    db: Session, author: User, forum: Forum, text: str, *, post: Post | None = None
) -> Screening:
    """Decide whether a new post from `author` in `forum` waits for a moderator, and why.
    `post` is the post being screened when it is already stored (it is not its own repeat)."""
    stored = {"author_id": author.id, "exclude_id": post.id if post and post.id else 0}
    result = Screening()
    if is_staff(author, forum.brand_id):
        return result
    if forum.moderation_policy == ModerationPolicy.PREMODERATED:
        result.reasons.append(_("this forum reviews every post before it appears"))
    level = author.trust_level
    if level == 0:
        # Whether there is one, not how many: an account with thousands of posts (an import's,
        # before the trust sweep) must not count them all on every post.
        earlier = db.scalar(_EARLIER_POST, stored)
        if earlier is None:
            result.reasons.append(_("first post from a new account (trust level 0)"))
    links = len(_LINK.findall(text))
    allowed = trust.links_allowed(author, forum.brand_id)
    if allowed is not None and links > allowed:
        result.reasons.append(
            ngettext(
                "%(num)d link from a trust-level-%(level)d account (limit %(limit)d)",
                "%(num)d links from a trust-level-%(level)d account (limit %(limit)d)",
                links,
            )
            % {"num": links, "level": level, "limit": allowed}
        )
    if level == 0 and _IMAGE.search(text):
        result.reasons.append(_("images from a trust-level-0 account"))
    _repeats(db, text, result, stored)
    _burst(db, author, result, stored)
    patterns = db.scalars(_PATTERNS, {"brand_id": forum.brand_id})
    for pattern in patterns:
        found = _matches(pattern, text)
        if found is None:
            continue
        enforced = pattern.mode == FilterMode.ENFORCE
        result.hits.append((pattern, found, enforced))
        if enforced:
            result.reasons.append(
                _("matched blocked pattern “%(pattern)s”") % {"pattern": pattern.pattern}
            )
    return result


def _repeats(db: Session, text: str, result: Screening, stored: dict[str, int]) -> None:
    """The same text (case and spacing aside) posted by the same author in the last day: one
    look-up by index on the stored fingerprints, however much they posted."""
    since = utcnow() - REPEAT_WINDOW
    created = db.scalar(_REPEAT, {**stored, "fingerprint": body_fingerprint(text), "since": since})
    if created is not None:
        minutes = max(1, int((utcnow() - created).total_seconds() // 60))
        result.reasons.append(
            ngettext(
                "repeats a post from %(num)d minute ago",
                "repeats a post from %(num)d minutes ago",
                minutes,
            )
            % {"num": minutes}
        )


def _burst(db: Session, author: User, result: Screening, stored: dict[str, int]) -> None:
    age = utcnow() - author.created_at
    if age >= NEW_ACCOUNT or author.trust_level > 0:
        return
    recent = db.scalar(_RECENT_POSTS, {**stored, "since": utcnow() - BURST_WINDOW})
    if (recent or 0) >= BURST_POSTS:
        why = _("%(count)d posts in 10 minutes from an account %(hours)d hours old") % {
            "count": (recent or 0) + 1,
            "hours": int(age.total_seconds() // 3600),
        }
        result.reasons.append(why)
        result.account_reasons.append(why)


def record_hits(db: Session, screening: Screening, post: Post) -> None:
    for pattern, excerpt, enforced in screening.hits:
        db.add(
            FilterHit(
                pattern_id=pattern.id, post_id=post.id, excerpt=excerpt[:300], enforced=enforced
            )
        )


# --- the admins' page --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatternReport:
    """A brand's blocked patterns with what they caught."""

    patterns: list[BlockedPattern]
    hits: dict[int, int]  # pattern id -> every hit it ever had
    recent_logged: list[FilterHit]  # the latest hits of log-only patterns, to judge them by


def pattern_report(db: Session, brand: Brand, *, recent: int = 20) -> PatternReport:
    patterns = list(
        db.scalars(
            select(BlockedPattern)
            .where(BlockedPattern.brand_id == brand.id)
            .order_by(BlockedPattern.id)
        )
    )
    ids = [pattern.id for pattern in patterns]
    hits: dict[int, int] = dict(
        db.execute(
            select(FilterHit.pattern_id, func.count())
            .where(FilterHit.pattern_id.in_(ids))
            .group_by(FilterHit.pattern_id)
        ).all()
    )
    logged = list(
        db.scalars(
            select(FilterHit)
            .where(FilterHit.pattern_id.in_(ids), FilterHit.enforced.is_(False))
            .order_by(FilterHit.id.desc())
            .limit(recent)
        )
    )
    return PatternReport(patterns=patterns, hits=hits, recent_logged=logged)


PATTERN_CHANGES = ("enforce", "log_only", "delete")


def change_pattern(
    db: Session, admin: User, pattern_id: int, change: str, *, ip: str | None = None
) -> int:
    """An admin makes a pattern hold posts, only log, or removes it; returns its brand's id.
    An unknown pattern or change is a 404 (they come from the page's URLs)."""
    found = db.get(BlockedPattern, pattern_id)
    if found is None or change not in PATTERN_CHANGES:
        raise NotFound()
    brand_id = found.brand_id
    if change == "delete":
        db.delete(found)
    else:
        found.mode = FilterMode(change)
    record_audit(
        db, actor=admin, action=f"filter.{change}", target_type="brand", target_id=brand_id,
        after={"pattern": found.pattern}, ip=ip,
    )  # fmt: skip
    return brand_id
