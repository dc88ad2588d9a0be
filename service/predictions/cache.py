"""Loaded heads for predict: parsed weights (LRU) and row metadata (TTL)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from nmtune.service.ttl_cache import TTLCache
from nmtune.tuner import NMTuneClassifier


@dataclass(frozen=True)
class HeadMeta:
    id: str
    tenant_id: str
    status: str
    dim: int
    backbone: str
    backbone_identity: str


class HeadCache:
    """Loaded heads: parsed weights in an LRU (immutable once trained) and the head row's
    metadata for ``ttl_s`` seconds, so a warm predict reads nothing from SQL."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self._models: OrderedDict[str, NMTuneClassifier] = OrderedDict()
        self._meta: TTLCache[str, HeadMeta] = TTLCache(max(size * 8, 64), ttl_s)
        self._lock = threading.Lock()

    def model(self, head_id: str) -> NMTuneClassifier | None:
        with self._lock:
            clf = self._models.get(head_id)
            if clf is not None:
                self._models.move_to_end(head_id)
            return clf

    def put_model(self, head_id: str, clf: NMTuneClassifier) -> None:
        with self._lock:
            self._models[head_id] = clf
            self._models.move_to_end(head_id)
            while len(self._models) > self.size:
                self._models.popitem(last=False)

    def meta(self, head_id: str) -> HeadMeta | None:
        return self._meta.get(head_id)

    def put_meta(self, meta: HeadMeta) -> None:
        self._meta.put(meta.id, meta)

    def forget(self, head_id: str) -> None:
        self._meta.pop(head_id)
        with self._lock:
            self._models.pop(head_id, None)
