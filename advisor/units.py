"""Human-readable numbers for tables and reports."""

from __future__ import annotations

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def fmt_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB'; None -> 'n/a'."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def fmt_count(n: float | None) -> str:
    """8030261248 -> '8.03 B'; 294912 -> '294.9 K'."""
    if n is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}" if scale >= 1e9 else f"{n / scale:.1f} {suffix}"
    return f"{n:.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    """How many times smaller b is than a: '3.6x'."""
    if not a or not b:
        return "n/a"
    return f"{a / b:.1f}x"
