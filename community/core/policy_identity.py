"""The guardian's rules about identity, beside community.core.policy (which is at its size
limit): who may sign in, sign up with a password, post without a confirmed address, and do staff
work without a second factor. Like the policy, they read no database: callers load the facts
(community.core.second_factor says when a brand requires a second factor).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from community.core.clock import utcnow
from community.core.errors import PermissionDenied, TwoFactorRequired
from community.core.i18n import gettext as _
from community.core.models import Brand, Forum, Role, User
from community.core.workspace_models import BrandRole


class AddressUnconfirmed(PermissionDenied):
    code = "email_unconfirmed"


class SignInRefused(PermissionDenied):
    code = "sign_in_refused"


def ensure_may_sign_in(user: User) -> None:
    """A closed account cannot sign in, a suspended one not yet (every way in asks this)."""
    if user.deactivated_at is not None:
        raise SignInRefused(_("This account is closed."))
    if user.suspended_until is not None and user.suspended_until > utcnow():
        raise SignInRefused(
            _("This account is suspended until %(until)s.")
            % {"until": user.suspended_until.strftime("%Y-%m-%d %H:%M UTC")}
        )


def ensure_password_sign_up(brand: Brand | None) -> None:
    """A brand whose members sign in with its own accounts (single sign-on only) takes no
    sign-ups with a password."""
    if brand is not None and not brand.password_sign_in:
        raise PermissionDenied(_("Sign in with %(brand)s's account.") % {"brand": brand.name})


def ensure_address_confirmed_for(user: User, forum: Forum) -> None:
    """Refuse posting in `forum` when its brand wants confirmed addresses
    (Brand.require_verified_email) and `user`'s is not. Such members exist: single sign-on
    accounts whose provider did not vouch for the address, staff-made and imported accounts.
    A confirmed member costs nothing here (the brand is not loaded)."""
    if user.email_verified_at is not None:
        return
    if forum.brand.require_verified_email:
        raise AddressUnconfirmed(_("Confirm your e-mail address to post here."))


def ensure_second_factor(*, required: bool, passed: bool, enrolled: bool) -> None:
    """Staff work where a brand requires a second factor needs a session that passed one.
    `enrolled`: the member has an authenticator (the page then offers to confirm this session
    with a code rather than to set one up)."""
    if not required or passed:
        return
    if enrolled:
        raise TwoFactorRequired(
            enrolled=True,
            message=_(
                "Staff pages here need a session that passed two-factor sign-in. "
                "Confirm this session with a code from your authenticator."
            ),
        )
    raise TwoFactorRequired(
        enrolled=False,
        message=_(
            "Staff pages here need two-factor sign-in. Set it up for your account to continue."
        ),
    )


def acting_roles(
    role: Role, brand_roles: Mapping[int, frozenset[BrandRole]], requiring: frozenset[int]
) -> tuple[Role, Mapping[int, frozenset[BrandRole]]] | None:
    """The roles a session without a passed second factor acts with, when `requiring` (the
    brands that require one of their staff) takes some away; None when it takes none. Grants
    in those brands are held back, and a site-wide staff role when any brand requires one
    (site-wide staff are staff of every brand)."""
    site_staff = role in Role.STAFF
    kept = {brand: held for brand, held in brand_roles.items() if brand not in requiring}
    if not requiring or (not site_staff and len(kept) == len(brand_roles)):
        return None
    return (Role.MEMBER if site_staff else role), MappingProxyType(kept)
