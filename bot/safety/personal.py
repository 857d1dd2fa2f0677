"""Redaction rules for personal data: cards (Luhn), IBANs (mod 97), SSNs, national insurance numbers, phones, emails, IPs."""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

from bot.safety.rules import Rule, mark


def _email_replace(m: re.Match[str]) -> str | None:
    return None if m.group("local").lower() == "git" else mark("email")  # git@github.com:org/repo


def _ipv6_replace(m: re.Match[str]) -> str | None:
    text = m.group()
    if not any(c.isdigit() for c in text):  # "db::add" is a path in code, not an address
        return None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:  # timestamps (12:30:45) and the like
        return None
    return mark("ip")


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


EMAIL = Rule("email", re.compile(
    r"(?<![\w.%+-])(?P<local>[A-Za-z0-9._%+-]+)@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b"), ("@",), _email_replace)
IPV4 = Rule("ip", re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)"), (".",))
IPV6 = Rule("ip", re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"),
    ("::", ":"), _ipv6_replace)


# --- personal data ----------------------------------------------------------------------------
# Shapes made of digits are everywhere in incident text (timestamps, latencies, ids, counters), so
# each of these rules matches a narrow written form and then checks what only the real thing
# passes: a card's brand prefix, length and Luhn digit, an IBAN's country length and mod-97.


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# (prefix range, lengths) of the card brands: Visa, Mastercard, Amex, Discover, UnionPay, JCB,
# Diners, Maestro, Mir. An ordinary long number rarely has both a brand's prefix and its length,
# and then only one in ten passes the Luhn check; epoch milliseconds (1...) and Slack ts never do.
_BRANDS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)),
    (51, 55, (16,)), (2221, 2720, (16,)),
    (34, 34, (15,)), (37, 37, (15,)),
    (6011, 6011, (16, 17, 18, 19)), (644, 649, (16, 17, 18, 19)), (65, 65, (16, 17, 18, 19)),
    (62, 62, (16, 17, 18, 19)),
    (3528, 3589, (16, 17, 18, 19)),
    (300, 305, (14, 15, 16, 17, 18, 19)), (36, 36, (14, 15, 16, 17, 18, 19)), (38, 39, (16, 17, 18, 19)),
    (5018, 5018, tuple(range(12, 20))), (5020, 5020, tuple(range(12, 20))), (5038, 5038, tuple(range(12, 20))),
    (5893, 5893, tuple(range(12, 20))), (6304, 6304, tuple(range(12, 20))), (6759, 6759, tuple(range(12, 20))),
    (6761, 6763, tuple(range(12, 20))),
    (2200, 2204, (16, 17, 18, 19)),
)
_CARD_BRANDS = tuple((len(str(low)), low, high, lengths) for low, high, lengths in _BRANDS)


def is_card_number(digits: str) -> bool:
    """A payment card number: a brand's prefix and length, and a valid Luhn check digit."""
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    prefixes = {n: int(digits[:n]) for n in (1, 2, 3, 4)}
    for width, low, high, lengths in _CARD_BRANDS:
        if low <= prefixes[width] <= high and len(digits) in lengths:
            return _luhn(digits)
    return False


def _card_grouping_ok(groups: list[str]) -> bool:
    """Written in groups: 4-4-4-4(-3), 4-6-5 (Amex) or 4-6-4 (Diners); ungrouped is fine too."""
    lengths = [len(g) for g in groups]
    if len(lengths) == 1:
        return True
    return (all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4) or lengths in ([4, 6, 5], [4, 6, 4])


_CARD_SEP = re.compile(r"[ -]")


def _card_replace(m: re.Match[str]) -> str | None:
    """The card inside a run of digit groups (one separator kind), the groups around it kept."""
    text = m.group()
    if len(set(_CARD_SEP.findall(text))) > 1:
        return None
    groups = _CARD_SEP.split(text)
    sep = (_CARD_SEP.findall(text) or [" "])[0]
    for start in range(len(groups)):
        for end in range(len(groups), start, -1):
            candidate = groups[start:end]
            if _card_grouping_ok(candidate) and is_card_number("".join(candidate)):
                head = sep.join(groups[:start]) + (sep if start else "")
                tail = (sep if end < len(groups) else "") + sep.join(groups[end:])
                return head + mark("card") + tail
    return None


def _iban_ok(compact: str) -> bool:
    """The IBAN check: the country's length, and the number read with letters as 10..35 is 1 mod 97."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}


def _iban_replace(m: re.Match[str]) -> str | None:
    """An IBAN of exactly its country's length (spaces between groups allowed), the rest kept."""
    text = m.group()
    want = _IBAN_LENGTHS.get(text[:2])
    if want is None:
        return None
    taken, end = 0, 0
    for index, char in enumerate(text):
        if char != " ":
            taken += 1
        if taken == want:
            end = index + 1
            break
    if not end or (end < len(text) and text[end].isalnum()):
        return None
    if not _iban_ok(text[:end].replace(" ", "")):
        return None
    return mark("iban") + text[end:]


def _phone_replace(m: re.Match[str]) -> str | None:
    digits = sum(c.isdigit() for c in m.group())
    return mark("phone") if 8 <= digits <= 15 else None


def _context_value(kind: str, low: int, high: int) -> Callable[[re.Match[str]], str | None]:
    """The value after a word that names it ("phone: ...", "SSN ..."), when it has low..high digits."""
    def replace(m: re.Match[str]) -> str | None:
        digits = sum(c.isdigit() for c in m.group("val"))
        if not low <= digits <= high:
            return None
        return m.group()[: m.start("val") - m.start()] + mark(kind) + m.group()[m.end("val") - m.start():]
    return replace


_DIGIT_END = r"(?![\w/=-]|[.,:]\d)"  # no word, path, version or decimal goes on after the number

# What every line is searched for before any personal-data rule runs: the rules' hints, folded
# into three patterns (one alternation of them all would be several times slower to search).
PERSONAL_GATES = (
    re.compile(r"\d{3}(?:\d[ -]?\d{4,6}[ -]?\d{3}|-\d\d-\d{4}|[-.]\d{3}[-.]\d{4})"),  # cards, SSNs, phones
    re.compile(r"[A-Z]{2} ?\d{2} ?(?:[A-Z0-9]{4}|\d{2} ?\d{2} ?[A-D])"),  # IBANs, national insurance numbers
    re.compile(r"\+[1-9]|\(\d{3}\)"),  # phones
)

PERSONAL_RULES: tuple[Rule, ...] = (
    Rule("card", re.compile(rf"(?<![\w.+/-])\d(?:[ -]?\d){{11,18}}{_DIGIT_END}"), replace=_card_replace,
         hint=re.compile(r"\d{4}[ -]?\d{4,6}[ -]?\d{3}")),
    Rule("iban", re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}"), replace=_iban_replace,
         hint=re.compile(r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}")),
    # US social security numbers, written with dashes (never 000, 666 or 9xx, no 00 or 0000 parts)
    Rule("ssn", re.compile(rf"(?<![\w.+/-])(?!000|666|9\d\d)\d{{3}}-(?!00)\d{{2}}-(?!0000)\d{{4}}{_DIGIT_END}"),
         hint=re.compile(r"\d{3}-\d{2}-\d{4}")),
    Rule("ssn", re.compile(r"\b(?:ssn|social[ _-]security(?:[ _-](?:number|no|#))?)\b[\s:#=\"'.]*"
                           r"(?P<val>\d{3}[- ]?\d{2}[- ]?\d{4})(?!\d)", re.I),
         ("ssn", "social"), _context_value("ssn", 9, 9)),
    # UK national insurance numbers (QQ 12 34 56 C; not the administrative prefixes BG, GB, NK, ...)
    Rule("national_id", re.compile(
        r"(?<![\w-])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w-])"),
        hint=re.compile(r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]")),
    # phones: E.164 (+14155552671), international with spaces or dashes (+44 20 7946 0958), and the
    # North American written forms ((415) 555-2671, 415-555-2671, 415.555.2671); bare digit runs
    # only after a word that names a phone, since ids and counters look the same
    Rule("phone", re.compile(r"(?<![\w+.])\+[1-9]\d{0,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}(?![\w]|[.:,]\d)"),
         replace=_phone_replace, hint=re.compile(r"\+[1-9]")),
    Rule("phone", re.compile(rf"(?<![\w.+/-])(?:1[ .-])?(?:\([2-9]\d\d\) ?[2-9]\d\d[-. ]\d{{4}}"
                             rf"|[2-9]\d\d-[2-9]\d\d-\d{{4}}|[2-9]\d\d\.[2-9]\d\d\.\d{{4}}){_DIGIT_END}"),
         hint=re.compile(r"\d{3}[-.]\d{3}[-.]\d{4}|\(\d{3}\)")),
    Rule("phone", re.compile(r"\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp|sms)(?:[ _-]?(?:no|number|num|#))?"
                             r"\b[\s:#=\"'.]*(?P<val>\+?\d[\d ().-]{5,20}\d)(?!\d)", re.I),
         ("phone", "tel", "mobile", "cell", "fax", "whatsapp", "sms"), _context_value("phone", 7, 15)),
)
