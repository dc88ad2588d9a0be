"""The SVG spectrum plot: well-formed, one curve per series, numerical zeros left out."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nmtune.service.diagnostics.svg import spectrum_svg

NS = "{http://www.w3.org/2000/svg}"


def test_svg_is_well_formed_with_one_curve_per_series() -> None:
    raw = {"singular_values": [4.0, 2.0, 1.0, 0.5, 0.0], "sve": 1.1, "lsvr": 0.6}
    adapted = {"singular_values": [5.0, 2.0, 0.5, 1e-12], "sve": -0.0, "lsvr": 0.5}
    root = ET.fromstring(spectrum_svg("head / test", {"raw": raw, "adapted": adapted}))
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 2
    # zeros are dropped: 4 and 3 points, not 5 and 4
    assert [len(pl.attrib["points"].split()) for pl in lines] == [4, 3]
    texts = " ".join(t.text or "" for t in root.iter(f"{NS}text"))
    assert "raw: SVE 1.100, LSVR 0.600" in texts and "SVE 0.000" in texts
    assert "-0.000" not in texts


def test_svg_with_no_usable_values_still_renders() -> None:
    root = ET.fromstring(spectrum_svg("empty", {"raw": {"singular_values": []}}))
    assert root.findall(f"{NS}polyline") == []
