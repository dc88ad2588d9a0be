"""Checks of the client against the server's OpenAPI spec: a request the client sends
matches an operation (path, method, query parameters, JSON body fields); a result type's
fields are properties of its schema."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import httpx

from nmtune import types

#: client result type -> the OpenAPI component it reads
TYPE_SCHEMAS: dict[type[Any], str] = {
    types.Dataset: "DatasetOut",
    types.SplitSummary: "SplitSummary",
    types.Job: "JobOut",
    types.Progress: "Progress",
    types.JobError: "JobError",
    types.Epoch: "EpochOut",
    types.JobPage: "JobPage",
    types.HeadInfo: "HeadOut",
    types.SplitMetrics: "SplitMetrics",
    types.OodAverage: "OodAverage",
    types.Prediction: "Prediction",
    types.ClassScore: "ClassScore",
    types.Spectrum: "SpectrumOut",
    types.HeadSpectrum: "HeadSpectrum",
    types.AuditInfo: "AuditOut",
    types.AuditExample: "AuditExample",
}


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = spec["components"]["schemas"][name]
    return node


def _props(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = resolve(spec, schema)
    out = set(schema.get("properties", {}))
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        out |= _props(spec, alt)
    return out


def find_operation(
    spec: dict[str, Any], method: str, path: str
) -> tuple[str, dict[str, Any]] | None:
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


def check_request(spec: dict[str, Any], request: httpx.Request) -> list[str]:
    """What in ``request`` the spec does not declare."""
    where = f"{request.method} {request.url.path}"
    found = find_operation(spec, request.method, request.url.path)
    if found is None:
        return [f"{where}: no such operation"]
    _, op = found
    problems: list[str] = []
    declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    problems += [f"{where}: query {k!r}" for k in request.url.params if k not in declared]
    headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
    if "idempotency-key" in request.headers and "idempotency-key" not in headers:
        problems.append(f"{where}: header Idempotency-Key")
    content = op.get("requestBody", {}).get("content", {})
    raw = request.read()  # a multipart body is a stream until read
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        if "application/json" not in content:
            return [*problems, f"{where}: JSON body not accepted"]
        allowed = _props(spec, content["application/json"]["schema"])
        body = json.loads(raw)
        problems += [f"{where}: body field {k!r}" for k in body if k not in allowed]
    elif ctype.startswith("multipart/form-data"):
        if "multipart/form-data" not in content:
            return [*problems, f"{where}: multipart body not accepted"]
        allowed = _props(spec, content["multipart/form-data"]["schema"])
        names = set(re.findall(rb'; name="([^"]+)"', raw))
        problems += [f"{where}: form field {n!r}" for n in names if n.decode() not in allowed]
    return problems


def check_types(spec: dict[str, Any]) -> list[str]:
    problems = []
    schemas = spec["components"]["schemas"]
    for cls, name in TYPE_SCHEMAS.items():
        if name not in schemas:
            problems.append(f"{cls.__name__}: schema {name} missing")
            continue
        props = _props(spec, schemas[name])
        for f in dataclasses.fields(cls):
            if f.name != "raw" and f.name not in props:
                problems.append(f"{cls.__name__}.{f.name}: not in {name}")
    return problems
