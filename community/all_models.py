"""Imports every domain's tables so Base.metadata is complete (Alembic and tests use it)."""

from community import models as community_models
from community import outbox as outbox_models
from community.db import Base
from community.importing import models as importing_models
from crowdservice import models as crowdservice_models
from kb import duplicate_models as kb_duplicate_models
from kb import models as kb_models
from moderation import models as moderation_models

__all__ = [
    "Base",
    "community_models",
    "crowdservice_models",
    "importing_models",
    "kb_duplicate_models",
    "kb_models",
    "moderation_models",
    "outbox_models",
]
