"""A brand's semantic search model as its admins choose it (the settings page, the API and
`community search-model` all come here): which model, a brand's own embedding service and its
secret header, the checks, the audit row, and getting the indexes and vectors to follow.

The Authorization header of a brand's service is a secret: it is stored with the options
(kb.embeddings.remote sends it) and never handed back; pages, API answers and audit rows say
only whether one is set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import netguard, outbox
from community.core.audit import record_audit
from community.core.errors import FormErrors
from community.core.forms import read_decimal_number, read_whole_number
from community.core.i18n import gettext as _
from community.core.i18n import ngettext
from community.core.models import Brand, Forum, Thread, User, Visibility
from community.core.policy import ensure_brand_admin
from community.core.readable import number
from kb import vector_coverage, vectors
from kb.embeddings import EmbedderConfigError
from kb.embeddings.health import health
from kb.models import Article, ArticleStatus

HTTP = "http"
# A brand's model changed: the worker prepares its indexes' documents, then gives the indexes
# their new embedders (kb.tasks: ModelChange).
MODEL_CHANGED = "search.model_changed"
# What an admin may choose; None (the form's "") is the site's SEARCH_MODEL.
CHOICES = (vectors.AUTO, "use-multilingual", "minilm", HTTP, vectors.OFF)
AUTHORIZATION = "Authorization"
MAX_SECRET_LENGTH = 4000
_PATH = re.compile(r"^[\w*-]+(\.[\w*-]+)*$")
# A header value httpx can send as is: visible ASCII and spaces, on one line.
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]+$")
_URL_QUERY = re.compile(r"(https?://[^\s?#/]+[^\s?#]*)[?#][^\s]*")


@dataclass(frozen=True)
class HttpFields:
    """A brand's embedding service as typed (form strings) or sent (API values)."""

    url: str = ""
    dimensions: str | int = ""
    request_format: str = "texts"
    response_path: str | None = None
    model: str | None = None
    timeout_seconds: str | float = ""
    batch_size: str | int = ""
    allow_private: bool = False
    # None keeps the header the service has; a value replaces it.
    authorization: str | None = None
    clear_authorization: bool = False


@dataclass(frozen=True)
class ModelSettings:
    """What the settings page and the API show: never the secret header."""

    choice: str | None
    site_default: str
    embedders: list[str]
    http: dict[str, Any] | None
    authorization_set: bool
    coverage: vector_coverage.Coverage


@dataclass(frozen=True)
class Saved:
    changed: bool
    # Documents asked for vectors: the ones lacking them, then (after a change of the
    # models) the ones whose stored vectors must go to the new embedders.
    missing: int = 0
    resent: int = 0


def _authorization(brand: Brand) -> str | None:
    if brand.search_model != HTTP:
        return None
    headers = (brand.search_model_options or {}).get("headers") or {}
    value = headers.get(AUTHORIZATION) if isinstance(headers, Mapping) else None
    return value if isinstance(value, str) and value else None


def public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options without the headers (secrets)."""
    return {key: value for key, value in options.items() if key != "headers"}


def describe(db: Session, brand: Brand, default_model: str) -> ModelSettings:
    http = None
    if brand.search_model == HTTP:
        http = public_options(brand.search_model_options or {})
    return ModelSettings(
        choice=brand.search_model,
        site_default=default_model,
        embedders=[spec.key for spec in vectors.model_specs(brand, default_model)],
        http=http,
        authorization_set=_authorization(brand) is not None,
        coverage=vector_coverage.coverage(db, brand, default_model),
    )


def coverage_text(coverage: vector_coverage.Coverage) -> str:
    if not coverage.models:
        return _("Semantic search is off: search is lexical only.")
    return ngettext(
        "%(with)s of %(total)s document has vectors.",
        "%(with)s of %(total)s documents have vectors.",
        coverage.documents,
    ) % {"with": number(coverage.with_vectors), "total": number(coverage.documents)}


# --- checking what was typed -------------------------------------------------------------------


def _whole(value: str | int, default: int | None, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if low <= value <= high else None
    if not value.strip() and default is not None:
        return default
    found = read_whole_number(value)
    return found if found is not None and low <= found <= high else None


def _seconds(value: str | float, default: float) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        found: float | None = float(value)
    elif not value.strip():
        return default
    else:
        found = read_decimal_number(value)
    return found if found is not None and 0 < found <= 120 else None


def check_service_url(url: str, *, allow_private: bool) -> str:
    """The cleaned URL, or FormErrors({"url": why}): refused like a webhook's address."""
    cleaned = url.strip()
    try:
        netguard.checked_addresses(
            netguard.parse_url(
                cleaned,
                missing=_("Enter the URL of your embedding service."),
                credentials=_(
                    "Do not put a user name or password in the URL: use the Authorization header."
                ),
            ),
            allow_private=allow_private,
        )
    except netguard.Refused as exc:
        raise FormErrors({"url": str(exc)}) from exc
    return cleaned


def _bounded_whole(
    raw: str | int, default: int | None, low: int, high: int, name: str, errors: dict[str, str]
) -> int | None:
    """The whole number typed, or the default when blank; a message in `errors` if neither."""
    number = _whole(raw, default, low, high)
    if number is None:
        errors[name] = _("Enter a whole number from %(low)d to %(high)d.") % {
            "low": low,
            "high": high,
        }
    return number


def _response_path(fields: HttpFields, errors: dict[str, str]) -> str:
    path = (fields.response_path or "").strip()
    if path and (len(path) > 200 or not _PATH.fullmatch(path)):
        errors["response_path"] = _(
            "Use names separated by dots, with * for every item of a list, e.g. data.*.embedding."
        )
    return path


def _authorization_to_keep(
    fields: HttpFields, previous_authorization: str | None, errors: dict[str, str]
) -> str | None:
    """The header value to keep: the one typed, none when cleared, else the stored one."""
    if fields.clear_authorization:
        return None
    if not fields.authorization:
        return previous_authorization
    authorization = fields.authorization.strip()
    if len(authorization) > MAX_SECRET_LENGTH or not _HEADER_VALUE.fullmatch(authorization):
        errors["authorization"] = _(
            "Use printable characters only, on one line (at most %(max)d)."
        ) % {"max": MAX_SECRET_LENGTH}
    return authorization


def http_options(fields: HttpFields, previous_authorization: str | None) -> dict[str, Any]:
    """The options of kb.embeddings.remote.HttpEmbedderConfig, or FormErrors naming every
    field that is wrong at once."""
    errors: dict[str, str] = {}
    url = fields.url
    try:
        url = check_service_url(fields.url, allow_private=fields.allow_private)
    except FormErrors as exc:
        errors |= exc.errors
    dimensions = _bounded_whole(fields.dimensions, None, 1, 8192, "dimensions", errors)
    if fields.request_format not in ("texts", "openai"):
        errors["request_format"] = _("Choose one of the offered request formats.")
    path = _response_path(fields, errors)
    model = (fields.model or "").strip()
    if len(model) > 200:
        errors["model"] = _("At most %(max)d characters.") % {"max": 200}
    timeout = _seconds(fields.timeout_seconds, 5.0)
    if timeout is None:
        errors["timeout_seconds"] = _("Enter a number of seconds above 0, at most 120.")
    batch_size = _bounded_whole(fields.batch_size, 64, 1, 2048, "batch_size", errors)
    authorization = _authorization_to_keep(fields, previous_authorization, errors)
    if errors:
        raise FormErrors(errors)
    options: dict[str, Any] = {
        "url": url,
        "dimensions": dimensions,
        "request_format": fields.request_format,
        "timeout_seconds": timeout,
        "batch_size": batch_size,
    }
    if path:
        options["response_path"] = path
    if model:
        options["model"] = model
    if fields.allow_private:
        options["allow_private"] = True
    if authorization:
        options["headers"] = {AUTHORIZATION: authorization}
    return options


def validate_model(name: str, options: Mapping[str, Any]) -> vectors.ModelSpec | None:
    """The spec a model choice stands for, or EmbedderConfigError (shown to the admin)."""
    if name in (vectors.OFF, vectors.AUTO):
        return None
    try:
        return vectors.spec_for(name, json.dumps(dict(options), sort_keys=True), None)
    except ValueError as exc:
        raise EmbedderConfigError(str(exc)) from exc


def _validated(choice: str, options: dict[str, Any]) -> None:
    try:
        validate_model(choice, options)
    except EmbedderConfigError as exc:
        message = str(exc)
        for value in (options.get("headers") or {}).values():
            message = message.replace(value, "***")
        raise FormErrors({"search_model": message}) from exc


def _choice(raw: str | None) -> str | None:
    choice = (raw or "").strip()
    if choice in ("", "default"):
        return None
    if choice not in CHOICES:
        raise FormErrors({"search_model": _("Choose one of the offered models.")})
    return choice


def _audited(choice: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    # Audit rows are read by more people than the settings: whether a secret is set, no more.
    described: dict[str, Any] = {"search_model": choice or "default"}
    if options:
        described["search_model_options"] = public_options(options) | {
            "authorization": "set" if (options.get("headers") or {}).get(AUTHORIZATION) else None
        }
    return described


# --- saving ------------------------------------------------------------------------------------


def do_set_search_model(
    db: Session,
    actor: User | None,
    brand: Brand,
    choice: str | None,
    http: HttpFields | None = None,
    *,
    default_model: str,
    ip: str | None = None,
) -> Saved:
    """Choose the brand's model (`actor` None: the operator at the command line). A change
    has the worker give the brand's indexes their new embedders and every document its
    vectors; search stays lexical for a document until its vector is there."""
    if actor is not None:
        ensure_brand_admin(actor, brand.id)
    name = _choice(choice)
    options: dict[str, Any] = {}
    if name == HTTP:
        options = http_options(http or HttpFields(), _authorization(brand))
    if name is not None:
        _validated(name, options)
    current = (brand.search_model, brand.search_model_options or {})
    if current == (name, options):
        return Saved(changed=False)
    before_keys = [spec.key for spec in vectors.model_specs(brand, default_model)]
    record_audit(
        db,
        actor=actor,
        action="brand.search_model",
        target_type="brand",
        target_id=brand.id,
        before=_audited(*current),
        after=_audited(name, options),
        reason=None if actor else "community search-model",
        ip=ip,
    )
    brand.search_model = name
    brand.search_model_options = options
    db.flush()
    # Handled before the vector events queued after it: the indexes get their embedders first.
    # Not indexing.brand_search_settings_changed: Meilisearch refuses a new embedder while
    # documents of the index do not name it (see kb.tasks: ModelChange).
    outbox.enqueue_keyed_now(db, MODEL_CHANGED, [(f"model:{brand.id}", {"brand_id": brand.id})])
    missing = vectors.request_missing(db, brand, default_model)
    after_keys = [spec.key for spec in vectors.model_specs(brand, default_model)]
    resent = 0
    if after_keys and after_keys != before_keys:
        resent = _resend_documents(db, brand)
    return Saved(changed=True, missing=missing, resent=resent)


def _resend_documents(db: Session, brand: Brand) -> int:
    """Ask for every other document of the brand too: one that has its vectors stored (a model
    used before) is indexed again with them at no model cost, since an index whose embedders
    changed holds no vectors for the new ones."""
    waiting = set(
        db.scalars(
            select(outbox.OutboxEvent.dedupe_key).where(
                outbox.OutboxEvent.kind == vectors.VECTORS_NEEDED,
                outbox.OutboxEvent.done_at.is_(None),
                outbox.OutboxEvent.claimed_by.is_(None),
            )
        )
    )
    threads = db.scalars(
        select(Thread.id)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(Forum.brand_id == brand.id, Thread.visibility == Visibility.VISIBLE)
        .order_by(Thread.id)
    )
    articles = db.scalars(
        select(Article.id)
        .where(
            Article.brand_id == brand.id,
            Article.status == ArticleStatus.PUBLISHED,
            Article.obsolete.is_(False),
        )
        .order_by(Article.id)
    )
    keyed = [
        (f"vectors:{kind}:{entity_id}", {f"{kind}_id": entity_id})
        for kind, ids in (("thread", list(threads)), ("article", list(articles)))
        for entity_id in ids
        if f"vectors:{kind}:{entity_id}" not in waiting
    ]
    outbox.enqueue_keyed_now(db, vectors.VECTORS_NEEDED, keyed)
    return len(keyed)


# --- health ------------------------------------------------------------------------------------


def _without_query(match: re.Match[str]) -> str:
    return match.group(1)


def embedder_check(db: Session | None, default_model: str) -> str:
    """/readyz's line: "ok", or which model fails and why. With the database, a model no brand
    uses any more (a service replaced by another) is left out."""
    failures = health.failures()
    if not failures:
        return "ok"
    in_use = None
    if db is not None:
        in_use = {
            spec.key
            for brand in db.scalars(select(Brand))
            for spec in vectors.model_specs(brand, default_model)
        }
    # Without query strings: a service's key may be in its URL, and /readyz is public.
    found = [
        f"{key}: {_URL_QUERY.sub(_without_query, error)}"
        for key, error in sorted(failures.items())
        if in_use is None or key in in_use
    ]
    return f"degraded: {'; '.join(found)}" if found else "ok"


def choice_labels(site_default: str) -> list[tuple[str, str]]:
    """The model select's options: (form value, label); "" is the site's default."""
    labels = {
        vectors.AUTO: _(
            "Automatic — MiniLM and multilingual together for English, "
            "multilingual for other languages"
        ),
        "use-multilingual": _("Multilingual USE"),
        "minilm": _("MiniLM (English)"),
        HTTP: _("Your own embedding service (HTTP)"),
        vectors.OFF: _("Off — lexical only"),
    }
    default = labels.get(site_default, site_default)
    return [("", _("Site default (%(model)s)") % {"model": default}), *labels.items()]
