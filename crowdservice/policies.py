"""Saving a brand's service policy: SLA targets, business hours, triage rules, expert routing.
Every value is checked before anything changes; a saved policy is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from community.clock import utcnow
from community.errors import FormErrors, PermissionDenied
from community.forms import read_decimal_number, read_whole_number
from community.i18n import gettext as _
from community.models import Brand, Role, User
from crowdservice import sla, triage
from crowdservice.models import ServicePolicy
from moderation.audit import record_audit

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
    if admin.role != Role.ADMIN:
        raise PermissionDenied(_("Only administrators can change the service policy."))
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, check, raw in (
        ("targets", sla.validate_targets, targets),
        ("business_hours", sla.validate_business_hours, business_hours),
        ("triage_rules", triage.validate_rules, rules),
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
    policy = db.get(ServicePolicy, brand.id)
    if policy is None:
        policy = ServicePolicy(brand_id=brand.id, targets={}, triage_rules=[])
        db.add(policy)
        db.flush()
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
