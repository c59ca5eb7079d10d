"""Personal data and secrets in text, found by checks that validate what they match, and masked.

What is detected (each match validated, not only pattern-matched):
- email: an address pattern (local part, @, a domain with a letter TLD).
- phone: numbers that `phonenumbers` (Google's libphonenumber) parses as valid, with a country code or in the
  rubric's default region.
- credit_card: 13-19 digits (spaces or dashes allowed) with a card network prefix and a valid Luhn checksum.
- iban: a country code, two check digits and 11-30 letters or digits whose ISO 13616 mod-97 checksum holds.
- us_ssn: the strict `AAA-GG-SSSS` pattern without the never-issued areas (000, 666, 9xx), group 00 or serial 0000.
- ip_address: IPv4 and IPv6 addresses that Python's `ipaddress` accepts, loopback and unspecified left out.
- secret: the pattern plugins of Yelp's `detect-secrets` (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, private keys,
  JWTs, basic-auth URLs, ...); its entropy and keyword plugins are left out (too many false alarms in prose).
Not detected: names, postal addresses, dates of birth, national ids without a checksum or strict pattern
outside the US SSN, health data, free-text identifiers.

Each span is claimed once, in the order above from secrets down (a card number is not also a phone number).
Values leave this module masked: `mask` keeps a few characters and stars the rest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import cache

# Entropy and keyword plugins fire on ordinary prose and hashes; IPs are found by our own check.
_SKIPPED_PLUGINS = {"Base64HighEntropyString", "HexHighEntropyString", "KeywordDetector", "IPPublicDetector"}

EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
CARD_PREFIXES = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9])|35")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    text = candidate.replace(" ", "")
    if not 15 <= len(text) <= 34:
        return False
    moved = text[4:] + text[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def mask(value: str, kind: str) -> str:
    """`value` with most characters starred: a few kept so a person can find it, never enough to use it."""
    value = value.strip()
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain[:1]}***.{domain.rsplit('.', 1)[-1]}"
    if kind in ("credit_card", "iban", "us_ssn", "phone"):
        digits = [c for c in value if c.isalnum()]
        return "*" * max(0, len(digits) - 4) + "".join(digits[-4:]) if len(digits) > 6 else "*" * len(digits)
    if kind == "secret":
        return value[:4] + "*" * min(12, max(4, len(value) - 4))
    return value[:2] + "*" * max(3, min(12, len(value) - 2))  # ip_address and anything else


class Scanner:
    """Finds personal data and secrets in one text: `scan(text)` yields (kind, subtype, masked value).

    Cheap first passes keep prose fast: each check runs only when the text holds what its matches must hold
    (a run of four digits for a card, a letter pair and two digits for an IBAN, ...); a secret plugin runs only
    when the text holds a 20-character token run, or its own literal marker (see `_SECRET_GATES`)."""

    def __init__(self, phone_region: str):
        self.region = phone_region
        self.plugins = _secret_plugins()
        import phonenumbers

        self._phonenumbers = phonenumbers

    def scan(self, text: str) -> Iterator[tuple[str, str, str]]:
        if not might_hold_findings(text):
            return
        long_run = _LONG_RUN.search(text) is not None
        for plugin, gate, patterns in self.plugins:
            if not (gate.search(text) if gate is not None else long_run):
                continue
            for pattern in patterns:
                for m in list(pattern.finditer(text)):
                    text = _blank(text, m.start(), m.end())
                    yield "secret", plugin, mask(m.group(0).strip(" =:\"'"), "secret")
        four_digits = _FOUR_DIGITS.search(text) is not None
        if four_digits:
            for m in CARD.finditer(text):
                number = re.sub(r"[ -]", "", m.group(0))
                if CARD_PREFIXES.match(number) and luhn_valid(number):
                    text = _blank(text, m.start(), m.end())
                    yield "credit_card", "", mask(m.group(0), "credit_card")
        if _IBAN_HINT.search(text):
            for m in IBAN.finditer(text):
                if iban_valid(m.group(0)):
                    text = _blank(text, m.start(), m.end())
                    yield "iban", "", mask(m.group(0), "iban")
        if four_digits and "-" in text:
            for m in SSN.finditer(text):
                text = _blank(text, m.start(), m.end())
                yield "us_ssn", "", mask(m.group(0), "us_ssn")
        if "@" in text:
            for m in EMAIL.finditer(text):
                text = _blank(text, m.start(), m.end())
                yield "email", "", mask(m.group(0), "email")
        if _IPV4_HINT.search(text):
            for m in IPV4.finditer(text):
                if _counted_ip(m.group(0)):
                    text = _blank(text, m.start(), m.end())
                    yield "ip_address", "ipv4", mask(m.group(0), "ip_address")
        if "::" in text or _IPV6_HINT.search(text):
            for m in IPV6.finditer(text):
                if m.group(0).count(":") >= 2 and _counted_ip(m.group(0)):
                    text = _blank(text, m.start(), m.end())
                    yield "ip_address", "ipv6", mask(m.group(0), "ip_address")
        pn = self._phonenumbers
        for hint in _PHONE_HINT.finditer(text):  # libphonenumber's matcher on each digit run (with a leading +)
            plus = text[hint.start() - 1 : hint.start()] == "+"
            digits = sum(ch.isdigit() for ch in hint.group(0))
            # With a country code a number has 8-15 digits (ITU-T E.164); without one, 10 or 11 (a US number,
            # or most national numbers with their trunk prefix): shorter runs (order numbers, dates) are skipped.
            if not (8 <= digits <= 15 if plus else 10 <= digits <= 11):
                continue
            start = hint.start() - plus
            for match in pn.PhoneNumberMatcher(text[start : hint.end()], self.region, leniency=pn.Leniency.VALID):
                yield "phone", "", mask(match.raw_string, "phone")


def might_hold_findings(text: str) -> bool:
    """False when no check can match: no digit (cards, IBANs, SSNs, phones, IPv4, most secrets), no `@` (e-mail),
    no `:` or `=` (IPv6, key-value secrets) and none of the literal markers of the secret plugins whose matches
    may hold no digit. Substring tests run at memory speed; a regular expression over the text costs ~10x more."""
    return (
        any(d in text for d in "0123456789@:=")
        or any(marker in text for marker in _LETTER_MARKERS)
        or "xox" in text.lower()
    )


# Secrets of detect-secrets' plugins that can be written without a digit, `:` or `=`: Artifactory tokens,
# private keys and JWTs (base64 of `{"`).
_LETTER_MARKERS = ("AKC", "AP", "BEGIN", "PRIVATE KEY", "eyJ")
_LONG_RUN = re.compile(r"[A-Za-z0-9_/+=-]{20}")
_FOUR_DIGITS = re.compile(r"\d{4}")
_IBAN_HINT = re.compile(r"[A-Z]{2}\d\d")
_IPV4_HINT = re.compile(r"\d\.\d")
_IPV6_HINT = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]")
_PHONE_HINT = re.compile(r"\d[\d ().-]{5,}\d")
# Plugins whose secrets can be shorter than the 20-character run every other plugin's pattern needs,
# with the literal each of their patterns holds.
_SECRET_GATES = {
    "ArtifactoryDetector": re.compile(r"AKC|AP[\dA-F]"),
    "PrivateKeyDetector": re.compile(r"PRIVATE KEY|BEGIN"),
    "BasicAuthDetector": re.compile(r"://"),
    "SlackDetector": re.compile(r"(?i)xox|hooks\.slack"),
}


def _blank(text: str, start: int, end: int) -> str:
    """`text` with a found span replaced by spaces, so no later check claims it again."""
    return text[:start] + " " * (end - start) + text[end:]


def _counted_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


@cache
def _secret_plugins() -> list[tuple[str, re.Pattern | None, list[re.Pattern]]]:
    """detect-secrets' pattern plugins: (name, gate, patterns). Their patterns are used as they ship; a match's
    whole text is the secret (their `analyze_string` yields only a captured part, e.g. a token's prefix)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    plugins = []
    for cls in get_mapping_from_secret_type_to_class().values():
        if cls.__name__ in _SKIPPED_PLUGINS:
            continue
        patterns = list(getattr(cls(), "denylist", ()))
        if patterns:
            plugins.append((cls.__name__, _SECRET_GATES.get(cls.__name__), patterns))
    return plugins
