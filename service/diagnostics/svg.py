"""A dependency-free SVG plot of singular value spectra (normalised s_i / s_1, log scale)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def spectrum_svg(
    title: str, series: dict[str, dict[str, Any]], width: int = 640, height: int = 400
) -> str:
    left, right, top, bottom = 70, 20, 40, 50
    pw, ph = width - left - right, height - top - bottom
    curves: list[tuple[str, list[float], dict[str, Any]]] = []
    floor = 1e-6
    for name, spec in series.items():
        sv = [float(v) for v in spec.get("singular_values", []) if v is not None]
        if not sv or sv[0] <= 0:
            continue
        # numerical zeros (rank-deficient matrices) are not part of the spectrum's shape
        curves.append((name, [v / sv[0] for v in sv if v / sv[0] > floor], spec))
    n_max = max((len(c[1]) for c in curves), default=1)
    ymin = min((min(c[1]) for c in curves), default=floor)
    lo = math.floor(math.log10(ymin)) if ymin > 0 else -6
    lo = min(lo, -1)

    def px(i: int) -> float:
        return left + (pw * i / max(n_max - 1, 1))

    def py(v: float) -> float:
        return top + ph * (0 - math.log10(v)) / (0 - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
        f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">index i</text>',
        f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" '
        f'text-anchor="middle">s_i / s_1 (log)</text>',
    ]
    for e in range(lo, 1):
        y = py(10.0**e)
        parts.append(
            f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{left - 8}" y="{y + 4:.1f}" '
            f'text-anchor="end">1e{e}</text>'
        )
    for i in sorted({0, (n_max - 1) // 2, n_max - 1}):
        parts.append(
            f'<text x="{px(i):.1f}" y="{top + ph + 16}" text-anchor="middle">{i + 1}</text>'
        )
    for k, (name, vals, spec) in enumerate(curves):
        color = _COLORS[k % len(_COLORS)]
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(vals))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        sve, lsvr = spec.get("sve"), spec.get("lsvr")
        label = (
            f"{name}: SVE {sve + 0.0:.3f}, LSVR {lsvr + 0.0:.3f}"
            if isinstance(sve, float) and isinstance(lsvr, float)
            else name
        )
        ly = top + 16 + 16 * k
        parts.append(
            f'<line x1="{left + pw - 290}" y1="{ly - 4}" x2="{left + pw - 270}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="2"/>'
            f'<text x="{left + pw - 265}" y="{ly}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
