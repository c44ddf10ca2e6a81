"""Personal-data scrubbing for every text people read: logs, Slack messages, artifacts.

`redact` replaces email addresses, phone numbers and street addresses with placeholders.
It errs towards redacting: a stray count swallowed next to a phone number costs less than a
customer's number in a Slack channel. What it must leave alone is what clerks work with:
order numbers (`#1042`), SKUs (`SKU-00012`), dates and times, money (`1234.50`), counts,
ids and URLs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"
ADDRESS_PLACEHOLDER = "[address]"

# RFC 5322 "atext" plus dots, besides letters, digits and "_" (internationalised local parts).
_LOCAL_PUNCTUATION = frozenset(".!#$%&'*+/=?^`{|}~-")
_EMAIL_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")

_SPACES = " \u00a0\u202f"  # French typography groups digits with (narrow) no-break spaces
_PAREN_GROUP = r"\([0-9]{1,5}\)"
# A run of digit groups joined by single separators, optionally after "+". Digits that
# touch letters, "#", "/", "@" or "-" belong to an id, a SKU, a path or a UUID; digits after
# "1." or "1," or "1:" continue a number or a time. A "+" may follow a digit so that a
# number glued to a redacted one is judged alike before and after redaction.
_PHONE_CANDIDATE = re.compile(
    rf"(?:(?<![^\W0-9])(?<![+#/@-])\+|(?<![\w+#/@-])(?<![0-9][.,:]))"
    rf"(?:{_PAREN_GROUP}|[0-9])"
    rf"(?:[0-9]|{_PAREN_GROUP}|[{_SPACES}.\-/](?=[0-9]|{_PAREN_GROUP}))*"
    rf"(?![\w@])(?![.,:/-][0-9])"
)
_DIGIT = re.compile(r"[0-9]")
_DIGIT_GROUPS = re.compile(r"[0-9]+")
_TOKEN_SPLIT = re.compile(f"([{_SPACES}])")
_DATE_TOKEN = re.compile(r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2}(?:[0-9]{2})?")
_PHONE_KEYWORD_BEFORE = re.compile(
    r"(?i)(?:\b(?:tel|tél|phone|mobile|mob|cell|fax|ph|telefon|téléphone|telefono|teléfono|handy|whatsapp)\b\.?|☎)"
    r"\s*(?:(?:no|nr|num|number)\b\.?\s*)?[:#=]?\s*$"
)
_MAX_PHONE_TOKENS = 7  # "+33 6 12 34 56 78" is six space-separated groups

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
# A capitalised word ("Baker", "O'Connell", "Champs-Élysées") or an ordinal ("5th").
_NAME = rf"(?:[{_UPPER}][{_LOWER}'’][\w'’-]*|[0-9]{{1,3}}(?:st|nd|rd|th))"
_HOUSE = r"[0-9]{1,5}[A-Za-z]?(?:[-/][0-9]{1,5}[A-Za-z]?)?"
_NUMBER_START = r"(?<![\w.,/+#-])"

_EN_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|terrace|"
    "way|parkway|pkwy|highway|hwy|square|sq|crescent|close|circle|cir|alley|mews|trail"
)
_EN_STREET = (
    rf"{_NUMBER_START}{_HOUSE},?\s+(?:{_NAME}\s+){{1,4}}?(?i:{_EN_TYPES})\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?\s+(?i:apt|apartment|suite|ste|unit|flat|floor)\.?\s*#?[0-9A-Za-z]{1,6}\b)?"
)
# Germanic and Nordic street names end in their street word: "Hauptstraße 5", "Kerkstraat 12".
_SUFFIXES = (
    r"straße|strasse|str\.?|gasse|weg|allee|platz|damm|chaussee|steig|pfad|"
    r"straat|laan|gracht|plein|kade|singel|gatan|gata|vägen|vej|gade|veien|utca|ulica"
)
_SUFFIXED_STREET = (
    rf"(?<![\w-])(?:{_NAME}\s+)?(?:[{_UPPER}][\w'’-]*?)?(?i:{_SUFFIXES})"
    rf"\s*,?\s*[0-9]{{1,4}}[A-Za-z]?(?:[-/][0-9]{{1,4}}[A-Za-z]?)?\b"
)
# Romance street words lead: "5 rue de Rivoli", "Rue de Rivoli 5", "Via Roma 12".
_ROMANCE_WORDS = (
    "rue|avenue|av\\.|boulevard|bd|chemin|allée|impasse|place|quai|route|cours|passage|"
    "calle|avenida|avda\\.?|paseo|plaza|carrer|via|viale|piazza|corso|largo|rua|travessa|praça|alameda"
)
_CONNECTORS = r"(?:(?:de|du|des|la|le|les|del|los|las|dei|della|delle|di|da|do|dos|das)\s+|[dl]['’])"
_ROMANCE_NAME = rf"(?i:{_ROMANCE_WORDS})\s+{_CONNECTORS}{{0,3}}{_NAME}(?:\s+{_CONNECTORS}{{0,2}}{_NAME}){{0,3}}"
_ROMANCE_NUMBER_FIRST = rf"{_NUMBER_START}{_HOUSE}(?:\s?(?i:bis|ter))?,?\s+{_ROMANCE_NAME}"
_ROMANCE_NAME_FIRST = rf"(?<![\w-]){_ROMANCE_NAME},?\s+{_HOUSE}\b"
_PO_BOX = r"\b(?i:p\.?\s?o\.?\s*box|postfach)\s+[0-9]+"

_ADDRESS = re.compile(
    "|".join(f"(?:{p})" for p in (_EN_STREET, _SUFFIXED_STREET, _ROMANCE_NUMBER_FIRST, _ROMANCE_NAME_FIRST, _PO_BOX))
)


def redact(text: str) -> str:
    """Replaces email addresses, phone numbers and street addresses with placeholders.

    Args:
        text: Any text meant for people.

    Returns:
        The text with `[email]`, `[phone]` and `[address]` where personal data was.
    """
    text = _redact_emails(text)
    if not _DIGIT.search(text):
        return text  # every street address and phone number carries a digit
    text = _substitute(_ADDRESS, text, lambda _: ADDRESS_PLACEHOLDER)
    return _substitute(_PHONE_CANDIDATE, text, _redact_phones)


def contains_pii(text: str) -> bool:
    """Whether `redact` would change the text."""
    return redact(text) != text


def _substitute(pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], str]) -> str:
    # Like `pattern.sub`, except that lookbehinds after a replacement see the placeholder
    # rather than the text it replaced, so a second pass finds nothing new (idempotence).
    out: list[str] = []
    pos = 0
    while match := pattern.search(text, pos):
        new = replace(match)
        if new == match.group():
            out.append(text[pos : match.end()])
            pos = match.end()
            continue
        out += [text[pos : match.start()], new]
        # A one-character stand-in for the placeholder, seen by lookbehinds, never emitted.
        text = new[-1] + text[match.end() :]
        pos = 1
    out.append(text[pos:])
    return "".join(out)


def _redact_emails(text: str) -> str:
    # Scanning from each "@" outwards rather than with one regex: a regex must either
    # backtrack quadratically over long runs of word characters or, with a lookbehind,
    # miss a second address glued to the first ("a@b.io+c@d.io").
    out: list[str] = []
    done = 0
    at = text.find("@")
    while at != -1:
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        start = at
        while domain and start > done and _is_local_char(text[start - 1]):
            start -= 1
        if domain and start < at:
            out += [text[done:start], EMAIL_PLACEHOLDER]
            done = domain.end()
        at = text.find("@", max(at + 1, done))
    out.append(text[done:])
    return "".join(out)


def _is_local_char(char: str) -> bool:
    return char.isalnum() or char == "_" or char in _LOCAL_PUNCTUATION


def _redact_phones(match: re.Match[str]) -> str:
    # The candidate is greedy, so it may join a phone number to counts or to a second
    # number; phones are looked for among its space-separated tokens, longest first.
    before = match.string[max(0, match.start() - 40) : match.start()]
    keyword = bool(_PHONE_KEYWORD_BEFORE.search(before))
    parts = _TOKEN_SPLIT.split(match.group())
    if len(parts) == 1:
        return PHONE_PLACEHOLDER if _is_phone(parts[0], keyword) else parts[0]
    tokens, spaces = parts[0::2], parts[1::2]
    digits = [sum(c.isdigit() for c in t) for t in tokens]
    dated = [bool(_DATE_TOKEN.fullmatch(t)) for t in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for j in range(min(len(tokens), i + _MAX_PHONE_TOKENS), i, -1):
            # 7 to 17 digits: E.164's 15 at most, plus a "00" international prefix.
            if not 7 <= sum(digits[i:j]) <= 17 or any(dated[i:j]):
                continue
            window = "".join(parts[2 * i : 2 * j - 1])
            if _is_phone(window, keyword_before=keyword and i == 0):
                out.append(PHONE_PLACEHOLDER)
                break
        else:
            j = i + 1
            out.append(tokens[i])
        if j < len(tokens):
            out.append(spaces[j - 1])
        i = j
    return "".join(out)


def _is_phone(candidate: str, keyword_before: bool) -> bool:
    groups = _DIGIT_GROUPS.findall(candidate)
    digits = sum(len(g) for g in groups)
    if candidate.startswith("+") or keyword_before:
        return 7 <= digits <= 15  # E.164 caps numbers at 15 digits
    if len(groups) < 2 or not 7 <= digits <= 15:
        return False  # a bare run of digits is an id, an amount or a count
    if candidate.startswith("00"):  # international prefix instead of "+"; no country code starts with 0
        return candidate[2:3] not in ("", "0") and digits >= 9
    if candidate.startswith("("):  # "(503) 555-0100"
        return True
    if [len(g) for g in groups] in ([3, 3, 4], [3, 4]):  # North American "503-555-0100"
        return True
    # National formats start with a trunk "0" before a non-zero area code: "030 1234567".
    return groups[0][0] == "0" and len(groups[0]) > 1 and groups[0][1] != "0" and 9 <= digits <= 13


class RedactingFilter(logging.Filter):
    """Redacts each log record's message, traceback and stack before any handler sees it.

    Attach it to handlers rather than loggers: a logger's filters skip records that
    propagate up from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrites the record in place; never drops it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format call: keep what was passed, redacted, instead of letting the
            # handler's error report print the raw arguments.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
