"""Agents' KB pages: the promote-to-article queue, the article editor (with personal-data
checks), the publishing workflow, version history; admins' search settings and stuck work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from community.core import outbox
from community.core import service as community_service
from community.core.auth import Admin, BrandAdmin, Curator, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound
from community.core.forms import optional_record_id, parse_form, record_ids
from community.core.i18n import gettext as _
from community.core.models import Brand, Thread
from community.core.web import flash_redirect, render
from community.diffs import diff_lines
from community.threads import access_thread, split_tags
from kb import article_feedback, pii, service
from kb.models import Article, ArticleStatus
from kb.routes_search_model import search_page
from kb.schemas import ArticleCreateIn, ArticleIn
from kb.search_settings import SearchSettingsForm, do_save_search_settings

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
# A title filled in from a link is cut to what the editor's title field takes.
TITLE_PREFILL_MAX = 150


@router.get("/b/{brand_slug}/kb/queue", response_class=HTMLResponse, name="kb_queue")
def queue(request: Request, db: SessionDep, user: Curator, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return render(
        request,
        "kb/queue.html",
        {
            "brand": brand,
            "candidates": service.candidates(db, brand),
            "review": article_feedback.needs_review(db, brand),
            "drafts": service.drafts(db, brand),
        },
    )


@router.post("/kb/candidates/{candidate_id}/dismiss", name="kb_dismiss")
def dismiss(request: Request, db: SessionDep, user: Curator, candidate_id: int) -> Response:
    candidate = service.dismiss_candidate(db, user, candidate_id)
    brand = db.get(Brand, candidate.brand_id)
    db.commit()
    return flash_redirect(
        request, f"/b/{brand.slug if brand else ''}/kb/queue", _("The suggestion is dismissed.")
    )


# --- the editor --------------------------------------------------------------------------------


def _form(
    title: str, summary: str, body: str, tags: str, locale: str, forum_id: str, note: str
) -> dict[str, str]:
    return {
        "title": title,
        "summary": summary,
        "body": body,
        "tags": tags,
        "locale": locale,
        "forum_id": forum_id,
        "note": note,
    }


def _editor(
    request: Request,
    db: SessionDep,
    brand: Brand,
    *,
    form: dict[str, str],
    article: Article | None = None,
    thread: Thread | None = None,
    credited: list[int] | None = None,
    errors: dict[str, str] | None = None,
    findings: list[pii.Finding] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "kb/editor.html",
        {
            "brand": brand,
            "article": article,
            "thread": thread,
            "credited": credited or [],
            "forums": community_service.list_forums(db, brand),
            "form": form,
            "errors": errors or {},
            "findings": findings or [],
            "describe_finding": pii.describe,
        },
        status_code=status_code,
    )


@router.get("/b/{brand_slug}/kb/new", response_class=HTMLResponse, name="kb_new")
def new_article(
    request: Request,
    db: SessionDep,
    user: Curator,
    brand_slug: str,
    thread: int | None = None,
    answers: str = "",
    title: str = "",
) -> Response:
    """The editor, empty, drafted from a thread, or with a `title` filled in (the insights'
    "write an article" link for a search that found nothing). The title is only shown in the
    form (escaped like any value); nothing is saved until the agent submits it."""
    brand = community_service.get_brand(db, brand_slug)
    source = access_thread(db, user, thread) if thread else None
    if source is not None and source.forum.brand_id != brand.id:
        raise NotFound()
    form = _form(" ".join(title.split())[:TITLE_PREFILL_MAX], "", "", "", "en", "", "")
    credited: list[int] = []
    findings: list[pii.Finding] = []
    if source is not None:
        chosen = record_ids(answers.split(","), field="answers")
        draft = service.draft_from_thread(db, source, chosen)
        form = _form(
            draft.title, draft.summary, draft.body, " ".join(draft.tags), draft.locale,
            str(draft.forum_id or ""), "",
        )  # fmt: skip
        credited = [post.id for post in draft.credited]
        findings = service.personal_data(db, f"{draft.title}\n{draft.body}", source)
    return _editor(
        request, db, brand, form=form, thread=source, credited=credited, findings=findings
    )


def _data(
    title: str, summary: str, body: str, tags: str, locale: str, forum_id: str, note: str
) -> dict[str, object]:
    return {
        "title": title,
        "summary": summary,
        "body": body,
        "tags": split_tags(tags),
        "locale": locale if locale in ("en", "es") else "en",
        "forum_id": optional_record_id(forum_id, field="forum_id"),
        "note": note or None,
    }


def _check_personal_data(
    db: SessionDep,
    thread: Thread | None,
    action: str,
    fields: dict[str, str],
) -> tuple[dict[str, str], list[pii.Finding], bool]:
    """Returns (fields, findings to show, may save). "redact" rewrites the fields."""
    text = f"{fields['title']}\n{fields['summary']}\n{fields['body']}"
    findings = service.personal_data(db, text, thread)
    if action == "redact":
        for name in ("title", "summary", "body"):
            fields[name] = pii.redact(fields[name], service.personal_data(db, fields[name], thread))
        return fields, [], True
    if findings and action != "save_anyway":
        return fields, findings, False
    return fields, [], True


@router.post("/b/{brand_slug}/kb/new", response_class=HTMLResponse)
def create_article(
    request: Request,
    db: SessionDep,
    user: Curator,
    brand_slug: str,
    title: FormText = "",
    summary: FormText = "",
    body: FormText = "",
    tags: FormText = "",
    locale: FormText = "en",
    forum_id: FormText = "",
    note: FormText = "",
    source_thread_id: FormText = "",
    credited: FormList = [],  # noqa: B006 - FastAPI reads form lists this way
    action: FormText = "save",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    source_id = optional_record_id(source_thread_id, field="source_thread_id")
    thread = access_thread(db, user, source_id) if source_id is not None else None
    credited_ids = record_ids(credited, field="credited")[:20]
    fields = _form(title, summary, body, tags, locale, forum_id, note)
    fields, findings, may_save = _check_personal_data(db, thread, action, fields)
    if not may_save:
        return _editor(
            request, db, brand, form=fields, thread=thread, credited=credited_ids,
            findings=findings,
        )  # fmt: skip
    try:
        data = parse_form(
            ArticleCreateIn,
            _data(**fields)
            | {
                "source_thread_id": thread.id if thread else None,
                "credited_post_ids": credited_ids,
            },
        )
        article = service.create_article(db, user, brand, data)
    except FormErrors as exc:
        db.rollback()
        return _editor(
            request, db, brand, form=fields, thread=thread, credited=credited_ids,
            errors=exc.errors, status_code=422,
        )  # fmt: skip
    db.commit()
    return flash_redirect(
        request, f"/kb/articles/{article.id}", _("The draft is saved."), category="success"
    )


@router.get("/kb/articles/{article_id}/edit", response_class=HTMLResponse, name="kb_edit")
def edit_article(request: Request, db: SessionDep, user: Curator, article_id: int) -> Response:
    article = service.access_curated_article(db, user, article_id)
    form = _form(
        article.title, article.summary, article.body_source, article.tags, article.locale,
        str(article.forum_id or ""), "",
    )  # fmt: skip
    return _editor(request, db, article.brand, form=form, article=article)


@router.post("/kb/articles/{article_id}/edit", response_class=HTMLResponse)
def save_article(
    request: Request,
    db: SessionDep,
    user: Curator,
    article_id: int,
    title: FormText = "",
    summary: FormText = "",
    body: FormText = "",
    tags: FormText = "",
    locale: FormText = "en",
    forum_id: FormText = "",
    note: FormText = "",
    action: FormText = "save",
) -> Response:
    article = service.access_article(db, user, article_id)
    fields = _form(title, summary, body, tags, locale, forum_id, note)
    fields, findings, may_save = _check_personal_data(db, article.source_thread, action, fields)
    if not may_save:
        return _editor(request, db, article.brand, form=fields, article=article, findings=findings)
    try:
        service.update_article(db, user, article, parse_form(ArticleIn, _data(**fields)))
    except FormErrors as exc:
        db.rollback()
        article = service.access_article(db, user, article_id)
        return _editor(
            request, db, article.brand, form=fields, article=article, errors=exc.errors,
            status_code=422,
        )  # fmt: skip
    db.commit()
    return flash_redirect(request, f"/kb/articles/{article.id}", _("A new version is saved."))


@router.post("/kb/articles/{article_id}/status", name="kb_status")
def article_status(
    request: Request, db: SessionDep, user: Curator, article_id: int, status: FormText = ""
) -> Response:
    article = service.access_article(db, user, article_id)
    if status not in ArticleStatus._value2member_map_:
        raise FormErrors({"status": _("Choose one of the offered options.")})
    service.change_status(db, user, article, ArticleStatus(status))
    db.commit()
    return flash_redirect(request, f"/kb/articles/{article.id}", _("The status is updated."))


@router.post("/kb/articles/{article_id}/verify", name="kb_verify")
def article_verify(request: Request, db: SessionDep, user: Curator, article_id: int) -> Response:
    article = service.access_article(db, user, article_id)
    service.verify(db, user, article)
    db.commit()
    return flash_redirect(request, f"/kb/articles/{article.id}", _("Marked as verified today."))


@router.post("/kb/articles/{article_id}/obsolete", name="kb_obsolete")
def article_obsolete(request: Request, db: SessionDep, user: Curator, article_id: int) -> Response:
    article = service.access_article(db, user, article_id)
    service.mark_obsolete(db, user, article)
    db.commit()
    return flash_redirect(
        request, f"/kb/articles/{article.id}", _("Marked obsolete: it left the knowledge base.")
    )


@router.get("/kb/articles/{article_id}/versions", response_class=HTMLResponse, name="kb_versions")
def article_versions(request: Request, db: SessionDep, user: Curator, article_id: int) -> Response:
    article = service.access_curated_article(db, user, article_id)
    history = service.versions(db, article)
    entries = []
    previous = None
    for version in history:
        lines = (
            diff_lines(previous.body_source, version.body_source)
            if previous
            else [("ctx", line) for line in version.body_source.splitlines()]
        )
        title_change: tuple[str, str] | None = (
            (previous.title, version.title)
            if previous and previous.title != version.title
            else None
        )
        entries.append({"version": version, "lines": lines, "title_change": title_change})
        previous = version
    return render(
        request,
        "kb/versions.html",
        {"article": article, "entries": list(reversed(entries))},
    )


# --- administration ----------------------------------------------------------------------------


@router.get("/admin/brands/{brand_slug}/search", response_class=HTMLResponse, name="admin_search")
def search_settings(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str
) -> Response:
    return search_page(request, db, community_service.get_brand(db, brand_slug))


@router.post("/admin/brands/{brand_slug}/search", response_class=HTMLResponse)
def save_search_settings(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    synonyms: FormText = "",
    solution_threshold: FormText = "",
    article_threshold: FormText = "",
    review_period_days: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    form = SearchSettingsForm(
        synonyms=synonyms, solution_threshold=solution_threshold,
        article_threshold=article_threshold, review_period_days=review_period_days,
    )  # fmt: skip
    try:
        do_save_search_settings(db, user, brand, form, ip=client_ip(request))
    except FormErrors as exc:
        return search_page(
            request, db, brand, synonyms_text=synonyms, errors=exc.errors, status_code=422
        )
    db.commit()
    return flash_redirect(
        request, f"/admin/brands/{brand.slug}/search", _("Search settings are saved.")
    )


@router.get("/admin/outbox", response_class=HTMLResponse, name="admin_outbox")
def stuck_work(request: Request, db: SessionDep, user: Admin) -> Response:
    """Background work that failed at least once and is not done: what, why, when next."""
    return render(request, "kb/admin_outbox.html", {"stuck": outbox.stuck_events(db)})


@router.post("/admin/outbox/{event_id}/retry", name="admin_outbox_retry")
def retry_now(request: Request, db: SessionDep, user: Admin, event_id: int) -> Response:
    outbox.retry_now(db, event_id)
    db.commit()
    return flash_redirect(request, "/admin/outbox", _("It will be retried in a moment."))
