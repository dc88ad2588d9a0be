"""Typed JSON values shared by the request and response schemas: scalars, hyper-parameter
override values and the user ``metadata`` object (small, flat, size-limited)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

#: a JSON scalar (bool before int: ``true`` stays a bool)
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None

#: a hyper-parameter value: a scalar, or a list of override objects (``auto_candidates``)
OverrideValue = Scalar | list[dict[str, Scalar]]

#: ``{name: value}`` hyper-parameters (request overrides, auto candidates' overrides)
Overrides = dict[str, OverrideValue]

METADATA_MAX_KEYS = 32
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_BYTES = 4096


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"at most {METADATA_MAX_KEYS} keys, got {len(value)}")
    for key in value:
        if not key or len(key) > METADATA_MAX_KEY_CHARS:
            raise ValueError(f"keys must be 1-{METADATA_MAX_KEY_CHARS} characters: {key[:80]!r}")
    size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"at most {METADATA_MAX_BYTES} bytes as JSON, got {size}")
    return value


MetadataValue = StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False)] | StrictStr

#: user metadata: a flat JSON object of scalars, validated and size-limited
Metadata = Annotated[
    dict[str, MetadataValue],
    AfterValidator(_check_metadata),
    Field(
        description=f"Your own labels for this object: a flat JSON object (at most "
        f"{METADATA_MAX_KEYS} keys of 1-{METADATA_MAX_KEY_CHARS} characters; values strings, "
        f"numbers or booleans; {METADATA_MAX_BYTES} bytes as JSON). Stored and returned as "
        "given; not interpreted by the service.",
    ),
]
