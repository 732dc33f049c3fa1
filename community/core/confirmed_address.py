"""The posting gate of brands that want confirmed addresses (Brand.require_verified_email):
a member whose e-mail address is not confirmed reads but does not ask or answer there.

Such members exist: new accounts until they open their link, single sign-on accounts whose
provider did not vouch for the address, accounts made by staff or imported. Kept apart from
community.core.policy (at its size limit); the Q&A services call it next to
policy.ensure_can_participate.
"""

from __future__ import annotations

from community.core.errors import PermissionDenied
from community.core.i18n import gettext as _
from community.core.models import Forum, User


class AddressUnconfirmed(PermissionDenied):
    code = "email_unconfirmed"


def ensure_address_confirmed_for(user: User, forum: Forum) -> None:
    """Refuse posting in `forum` when its brand wants confirmed addresses and `user`'s is not.
    A confirmed member costs nothing here (the brand is not loaded)."""
    if user.email_verified_at is not None:
        return
    if forum.brand.require_verified_email:
        raise AddressUnconfirmed(_("Confirm your e-mail address to post here."))
