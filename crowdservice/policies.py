"""Saving a brand's service policy: SLA targets, business hours, triage rules, expert routing.
Every value is checked before anything changes; a saved policy is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors
from community.core.forms import read_decimal_number, read_whole_number
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import ensure_brand_admin
from crowdservice import sla, triage
from crowdservice.models import ServicePolicy
from crowdservice.rules_form import RuleRow, rules_from_rows

DELAY_RANGE = (0.1, 1.0)
DAILY_RANGE = (0, 50)


def _snapshot(policy: ServicePolicy) -> dict[str, Any]:
    return {
        "targets": policy.targets,
        "business_hours": policy.business_hours,
        "triage_rules": len(policy.triage_rules or []),
        "expert_delay_factor": policy.expert_delay_factor,
        "expert_daily_invitations": policy.expert_daily_invitations,
    }


def _validate_rules(raw: object) -> list[dict[str, Any]]:
    """Rules from the form's rows or from JSON, checked by the one function for both. Rules
    equal to the defaults are stored as "use the defaults", so later default changes apply."""
    if isinstance(raw, list) and raw and all(isinstance(row, RuleRow) for row in raw):
        cleaned = rules_from_rows(raw)
    else:
        cleaned = triage.validate_rules(raw)
    return [] if cleaned == triage.DEFAULT_RULES else cleaned


def _policy(db: Session, brand: Brand) -> ServicePolicy:
    policy = db.get(ServicePolicy, brand.id)
    if policy is None:
        policy = ServicePolicy(brand_id=brand.id, targets={}, triage_rules=[])
        db.add(policy)
        db.flush()
    return policy


def save_rules(
    db: Session, admin: User, brand: Brand, raw: str, *, ip: str | None = None
) -> ServicePolicy:
    """Replace only the priority rules, from a JSON document (an import); audited like a save.
    An empty list goes back to the defaults."""
    ensure_brand_admin(admin, brand.id)
    cleaned = _validate_rules(raw.strip() or "[]")
    policy = _policy(db, brand)
    before = _snapshot(policy)
    policy.triage_rules = cleaned
    policy.updated_at = utcnow()
    db.flush()
    record_audit(
        db, actor=admin, action="service_policy.saved", target_type="brand", target_id=brand.id,
        before=before, after=_snapshot(policy), reason="rules imported", ip=ip,
    )  # fmt: skip
    return policy


def rules_document(policy: ServicePolicy) -> list[dict[str, Any]]:
    """The rules in force, for the JSON export (the defaults when the brand has none)."""
    return policy.triage_rules or triage.DEFAULT_RULES


def save_policy(
    db: Session,
    admin: User,
    brand: Brand,
    *,
    targets: object,
    business_hours: object,
    rules: object,
    expert_delay_factor: str,
    expert_daily_invitations: str,
    ip: str | None = None,
) -> ServicePolicy:
    """Validate everything first (one message per field), then store it. Deadlines of threads
    already waiting keep the policy they were given; new and re-prioritised threads use this."""
    ensure_brand_admin(admin, brand.id)
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, check, raw in (
        ("targets", sla.validate_targets, targets),
        ("business_hours", sla.validate_business_hours, business_hours),
        ("triage_rules", _validate_rules, rules),
    ):
        try:
            cleaned[key] = check(raw)
        except FormErrors as exc:
            errors.update(exc.errors)
    for key, raw_number, (low, high), read in (
        ("expert_delay_factor", expert_delay_factor, DELAY_RANGE, read_decimal_number),
        ("expert_daily_invitations", expert_daily_invitations, DAILY_RANGE, read_whole_number),
    ):
        number = read(raw_number)
        if number is None:
            errors[key] = _("Enter a number.")
            continue
        if not low <= number <= high:
            errors[key] = _("Enter a number from %(low)s to %(high)s.") % {"low": low, "high": high}
            continue
        cleaned[key] = number
    if errors:
        raise FormErrors(errors)
    policy = _policy(db, brand)
    before = _snapshot(policy)
    policy.targets = cleaned["targets"]
    policy.business_hours = cleaned["business_hours"]
    policy.triage_rules = cleaned["triage_rules"]
    policy.expert_delay_factor = cleaned["expert_delay_factor"]
    policy.expert_daily_invitations = cleaned["expert_daily_invitations"]
    policy.updated_at = utcnow()
    db.flush()
    record_audit(
        db, actor=admin, action="service_policy.saved", target_type="brand", target_id=brand.id,
        before=before, after=_snapshot(policy), ip=ip,
    )  # fmt: skip
    return policy
