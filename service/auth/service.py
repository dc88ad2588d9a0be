"""API keys: random, shown once, stored as SHA-256 (keys carry 256 bits of entropy)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nmtune.service.auth.models import ApiKey, Tenant
from nmtune.service.db.base import new_id, utcnow

KEY_PREFIX = "nmt_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    tenant_id: str
    tenant_name: str
    key: str


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    tenant_name: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


#: The longest tenant name (the column's width).
MAX_TENANT_NAME = 200


def check_tenant_name(name: str) -> str:
    """``name`` if it can name a tenant: 1-200 characters, no surrounding whitespace, no
    control characters; else ValueError saying why."""
    if not name or not name.strip():
        raise ValueError("a tenant name must not be empty")
    if name != name.strip():
        raise ValueError(f"tenant name {name!r} has leading or trailing whitespace")
    if len(name) > MAX_TENANT_NAME:
        raise ValueError(f"a tenant name has at most {MAX_TENANT_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"tenant name {name!r} has control characters")
    return name


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    check_tenant_name(name)
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(id=new_id("tn"), name=name)
        session.add(tenant)
        session.flush()
    return tenant


def create_key(
    session: Session, tenant_name: str, name: str = "", key: str | None = None
) -> CreatedKey:
    tenant = get_or_create_tenant(session, tenant_name)
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id("key"), tenant_id=tenant.id, name=name, prefix=key[:12], key_hash=hash_key(key)
    )
    session.add(row)
    session.flush()
    return CreatedKey(key_id=row.id, tenant_id=tenant.id, tenant_name=tenant.name, key=key)


def ensure_key(session: Session, tenant_name: str, key: str) -> None:
    """Make sure ``key`` exists (used for the bootstrap key from settings)."""
    if session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key))) is None:
        create_key(session, tenant_name, name="bootstrap", key=key)


def list_keys(session: Session, tenant_name: str | None = None) -> list[KeyInfo]:
    stmt = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
    if tenant_name:
        stmt = stmt.where(Tenant.name == tenant_name)
    return [
        KeyInfo(k.id, tname, k.name, k.prefix, k.created_at, k.revoked_at)
        for k, tname in session.execute(stmt.order_by(ApiKey.created_at)).all()
    ]


def revoke_key(session: Session, key_id: str) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True


def tenant_for_key(session: Session, key: str) -> str | None:
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    return row.tenant_id if row else None
