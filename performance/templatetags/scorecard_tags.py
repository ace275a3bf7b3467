"""``{% load scorecard_tags %}``: KPI values by unit, scores, RAG labels and a sparkline.

- ``value|kpi_value:unit``: a fraction as a percentage ("85.7%"), days and hours with one
  decimal ("12.5"), other units with up to two decimals; ``None`` reads "not enough data".
- ``kpis|cell:slug``: the KPI cell of a row (``row.kpis|cell:slug``).
- ``score|score``: a composite with one decimal, "—" without one.
- ``trend|sparkline``: a small inline SVG of the composite scores (no JavaScript needed).
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join

from sites.models import StudySiteStatus

register = template.Library()

NOT_ENOUGH_DATA = "not enough data"
ONE_DECIMAL_UNITS = frozenset({"days", "hours"})
STATUS_LABELS = dict(StudySiteStatus.choices)
RAG_LABELS = {"green": "Green", "amber": "Amber", "red": "Red"}


def _trimmed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def kpi_value(value, unit: str = "") -> str:
    if value is None or value == "":
        return NOT_ENOUGH_DATA
    value = float(value)
    if unit == "fraction":
        return f"{_trimmed(value * 100, 1)}%"
    if unit in ONE_DECIMAL_UNITS:
        return f"{value:.1f}"
    return _trimmed(value, 2)


@register.filter
def threshold(value, unit: str = "") -> str:
    """A threshold as people read it (fractions as percentages), never "not enough data"."""
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{_trimmed(float(value) * 100, 1)}%"
    return _trimmed(float(value), 2)


@register.filter
def unit_suffix(unit: str) -> str:
    """The unit shown next to a KPI's name ("%" for fractions)."""
    return "%" if unit == "fraction" else unit


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@register.filter
def cell(kpis, slug):
    if not kpis:
        return None
    return kpis.get(slug)


@register.filter
def score(value) -> str:
    return "—" if value is None else f"{float(value):.1f}"


@register.filter
def rag_label(rag) -> str:
    return RAG_LABELS.get(rag or "", "")


@register.filter
def sparkline(trend, size: str = "120x28"):
    """An SVG polyline of ``[(month, score)]`` on a 0–100 scale; months without a score
    break the line. Decorative: the numbers are next to it in text."""
    width, height = (int(part) for part in size.split("x"))
    points = list(trend or [])
    if not points:
        return ""
    step = width / max(len(points) - 1, 1)
    segments, current = [], []
    for index, (_, value) in enumerate(points):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        x = round(index * step, 1)
        y = round(height - 2 - float(value) / 100 * (height - 4), 1)
        current.append(f"{x},{y}")
    if current:
        segments.append(current)
    if not segments:
        return ""
    lines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="currentColor" stroke-width="2"/>',
        ((" ".join(segment),) for segment in segments),
    )
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="2" fill="currentColor"/>',
        (tuple(segment[0].split(",")) for segment in segments if len(segment) == 1),
    )
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" aria-hidden="true"'
        ' focusable="false">{}{}</svg>',
        width,
        height,
        width,
        height,
        lines,
        dots,
    )
