"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from nmtune.service.audits.models import Audit, AuditItem
from nmtune.service.auth.models import ApiKey, Tenant
from nmtune.service.datasets.models import Dataset, DatasetVectors, Example
from nmtune.service.db.base import Base
from nmtune.service.embeddings.models import CachedEmbedding, DatasetFeatures
from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job

__all__ = [
    "ApiKey",
    "Audit",
    "AuditItem",
    "Base",
    "CachedEmbedding",
    "Dataset",
    "DatasetFeatures",
    "DatasetVectors",
    "Example",
    "Head",
    "Job",
    "Tenant",
]
