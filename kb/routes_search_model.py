"""The semantic search model and the deflection holdout on a brand's search settings page (the
rest of the page, synonyms and thresholds, is in kb.routes_curation): the page's shared
rendering, the model's form and the holdout's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from community.core import service as community_service
from community.core.auth import BrandAdmin, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import flash_redirect, render
from kb import ask_sessions, search_model

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


def _model_form(brand: Brand) -> dict[str, object]:
    options = search_model.public_options(brand.search_model_options or {})
    return {
        "search_model": brand.search_model or "",
        "url": options.get("url", ""),
        "dimensions": options.get("dimensions", ""),
        "request_format": options.get("request_format", "texts"),
        "response_path": options.get("response_path", ""),
        "model": options.get("model", ""),
        "timeout_seconds": options.get("timeout_seconds", 5),
        "batch_size": options.get("batch_size", 64),
        "allow_private": bool(options.get("allow_private")),
    }


def _holdout_form(brand: Brand) -> dict[str, object]:
    """Switched off, the share field offers the default for when it is switched on."""
    enabled = brand.holdout_percent > 0
    return {
        "enabled": enabled,
        "percent": brand.holdout_percent if enabled else ask_sessions.DEFAULT_HOLDOUT_PERCENT,
    }


def search_page(
    request: Request,
    db: Session,
    brand: Brand,
    *,
    synonyms_text: str | None = None,
    errors: dict[str, str] | None = None,
    model_form: dict[str, object] | None = None,
    model_errors: dict[str, str] | None = None,
    holdout_form: dict[str, object] | None = None,
    holdout_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    default = request.app.state.settings.search_model
    model = search_model.describe(db, brand, default)
    if synonyms_text is None:
        synonyms_text = "\n".join(", ".join(group) for group in brand.synonyms or [])
    return render(
        request,
        "kb/admin_search.html",
        {
            "brand": brand,
            "synonyms_text": synonyms_text,
            "errors": errors or {},
            "model": model,
            "model_choices": search_model.choice_labels(default),
            "model_form": model_form or _model_form(brand),
            "model_errors": model_errors or {},
            "coverage_text": search_model.coverage_text(model.coverage),
            "holdout_form": holdout_form or _holdout_form(brand),
            "holdout_errors": holdout_errors or {},
        },
        status_code=status_code,
    )


@router.post(
    "/admin/brands/{brand_slug}/search/model",
    response_class=HTMLResponse,
    name="admin_search_model",
)
def save_search_model(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    search_model_choice: Annotated[str, Form(alias="search_model")] = "",
    url: FormText = "",
    dimensions: FormText = "",
    request_format: FormText = "texts",
    response_path: FormText = "",
    model: FormText = "",
    authorization: FormText = "",
    clear_authorization: FormText = "",
    timeout_seconds: FormText = "",
    batch_size: FormText = "",
    allow_private: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    fields = search_model.HttpFields(
        url=url[:2000],
        dimensions=dimensions[:20],
        request_format=request_format[:20],
        response_path=response_path[:300],
        model=model[:300],
        timeout_seconds=timeout_seconds[:20],
        batch_size=batch_size[:20],
        allow_private=allow_private == "1",
        authorization=authorization or None,
        clear_authorization=clear_authorization == "1",
    )
    try:
        saved = search_model.do_set_search_model(
            db, user, brand, search_model_choice[:40], fields,
            default_model=request.app.state.settings.search_model, ip=client_ip(request),
        )  # fmt: skip
    except FormErrors as exc:
        db.rollback()
        # What was typed comes back, except the secret header (never echoed).
        typed: dict[str, object] = {
            "search_model": search_model_choice[:40],
            "url": fields.url,
            "dimensions": fields.dimensions,
            "request_format": fields.request_format,
            "response_path": fields.response_path,
            "model": fields.model,
            "timeout_seconds": fields.timeout_seconds,
            "batch_size": fields.batch_size,
            "allow_private": fields.allow_private,
        }
        brand = community_service.get_brand(db, brand_slug)
        return search_page(
            request, db, brand, model_form=typed, model_errors=exc.errors, status_code=422
        )
    db.commit()
    if not saved.changed:
        message = _("The search model is unchanged.")
    elif saved.missing or saved.resent:
        message = _(
            "The search model is saved. The worker is preparing the documents' vectors; "
            "until a document has its vector, it is found by its words only."
        )
    else:
        message = _("The search model is saved.")
    return flash_redirect(request, f"/admin/brands/{brand.slug}/search", message)


@router.post(
    "/admin/brands/{brand_slug}/search/holdout",
    response_class=HTMLResponse,
    name="admin_search_holdout",
)
def save_holdout(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    holdout_enabled: FormText = "",
    holdout_percent: FormText = "",
) -> Response:
    """The deflection holdout: on or off, and the share of ask-form sessions held back."""
    brand = community_service.get_brand(db, brand_slug)
    form = ask_sessions.HoldoutForm(enabled=holdout_enabled == "1", percent=holdout_percent[:20])
    try:
        percent = ask_sessions.do_set_holdout(db, user, brand, form, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        brand = community_service.get_brand(db, brand_slug)
        typed: dict[str, object] = {"enabled": form.enabled, "percent": form.percent}
        return search_page(
            request, db, brand, holdout_form=typed, holdout_errors=exc.errors, status_code=422
        )
    db.commit()
    message = (
        _("The holdout is on: %(percent)d%% of ask-form sessions get no suggestions.")
        % {"percent": percent}
        if percent
        else _("The holdout is off: every ask-form session gets suggestions.")
    )
    return flash_redirect(request, f"/admin/brands/{brand.slug}/search", message)
