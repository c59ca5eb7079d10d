"""Numbers for people: the one formatter set the terminal, the reports and `bench/` print with.

Each function prints one kind of figure the same way wherever it appears, and a
missing figure (None) as `MISSING`. Outputs are digits, units and signs only, so a
report can print them without Markdown escaping. `digits` asks for more precision
where a benchmark compares figures that differ in the third decimal.
"""

from __future__ import annotations

MISSING = "—"
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_COUNT_SCALES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def fmt_bytes(n: float | None, digits: int = 2) -> str:
    """1536 -> '1.50 KiB'; 512 -> '512 B' (binary units, as GPU memory is sold and counted)."""
    if n is None:
        return MISSING
    value = float(n)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{value:.0f} B" if unit == "B" else f"{value:,.{digits}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def fmt_gib(n: float | None, digits: int = 1) -> str:
    """Bytes in GiB whatever their size, for columns that compare GPUs: 25769803776 -> '24.0 GiB'."""
    return MISSING if n is None else f"{n / (1 << 30):,.{digits}f} GiB"


def fmt_count(n: float | None) -> str:
    """A count at a glance: 8030261248 -> '8.03 B'; 294912 -> '294.9 K'; 512 -> '512'."""
    if n is None:
        return MISSING
    for scale, suffix in _COUNT_SCALES:
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}" if scale >= 1e9 else f"{n / scale:.1f} {suffix}"
    return f"{n:.0f}"


def fmt_int(n: float | None) -> str:
    """An exact count with thousands separators: 4718592 -> '4,718,592'."""
    return MISSING if n is None else f"{int(n):,}"


def fmt_pct(x: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.123 -> '12.3%'; signed for errors and changes: '+12.3%'."""
    if x is None:
        return MISSING
    return f"{100 * x:+.{digits}f}%" if signed else f"{100 * x:.{digits}f}%"


def fmt_ratio(x: float | None, digits: int = 1) -> str:
    """How many times: 3.61 -> '3.6x'."""
    return MISSING if x is None else f"{x:,.{digits}f}x"


def fmt_seconds(s: float | None) -> str:
    """A duration: milliseconds under a second ('12.3 ms'), else seconds ('1.23 s'), minutes from ten of them."""
    if s is None:
        return MISSING
    if s < 1:
        return f"{1000 * s:.1f} ms"
    if s < 600:
        return f"{s:.2f} s"
    return f"{s / 60:,.1f} min"


def fmt_number(x: float | None, digits: int = 3) -> str:
    """A plain decimal with `digits` significant digits and no exponent: 1610.2 -> '1610'; 0.01234 -> '0.0123'."""
    if x is None:
        return MISSING
    if x == 0:
        return "0"
    from math import floor, log10

    decimals = max(0, digits - 1 - floor(log10(abs(x))))
    return f"{round(x, decimals):.{decimals}f}"
