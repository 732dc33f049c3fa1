"""Imports every domain's tables so Base.metadata is complete (Alembic and tests use it)."""

from community.core import account_models, activity_models, workspace_models
from community.core import audit as audit_models
from community.core import import_models as importing_models
from community.core import models as community_models
from community.core import outbox as outbox_models
from community.core.db import Base
from crowdservice import models as crowdservice_models
from crowdservice.followup import models as followup_models
from crowdservice.known_issues import models as known_issue_models
from crowdservice.saved_replies import models as saved_reply_models
from kb import duplicate_models as kb_duplicate_models
from kb import models as kb_models
from moderation import models as moderation_models

__all__ = [
    "Base",
    "account_models",
    "activity_models",
    "audit_models",
    "community_models",
    "crowdservice_models",
    "followup_models",
    "importing_models",
    "kb_duplicate_models",
    "kb_models",
    "known_issue_models",
    "moderation_models",
    "outbox_models",
    "saved_reply_models",
    "workspace_models",
]
