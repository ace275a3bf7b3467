"""CSV exports of the performance tables: one cell rule for every file."""

from __future__ import annotations

# A cell starting with one of these is a formula to a spreadsheet ("=HYPERLINK(…)" in a
# site's or CRO's name): such text gets a leading apostrophe, which spreadsheets show as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``None`` as an empty cell, formula-like text defused, everything else as it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_row(values) -> list:
    return [csv_cell(value) for value in values]


__all__ = ["csv_cell", "csv_row"]
