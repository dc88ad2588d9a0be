"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from service.audits.models import Audit, AuditItem
from service.auth.models import ApiKey, Tenant
from service.datasets.models import Dataset, DatasetVectors, Example
from service.db.base import Base
from service.embeddings.models import CachedEmbedding
from service.heads.models import Head
from service.jobs.models import Job

__all__ = [
    "ApiKey",
    "Audit",
    "AuditItem",
    "Base",
    "CachedEmbedding",
    "Dataset",
    "DatasetVectors",
    "Example",
    "Head",
    "Job",
    "Tenant",
]
