"""Secrets and personal data inside training text, found by pattern and always reported masked.

Each pattern runs only on texts that pass a cheap substring test first (``"sk-" in text``, ``"@" in text``,
a digit in the text...), so ordinary prose costs a handful of ``in`` checks per message instead of a
regular-expression scan. Matches that need more than a shape are checked further: credit-card numbers
with the Luhn checksum, IBANs with the mod-97 checksum, phone numbers by their count of digits, "high
entropy" tokens by Shannon entropy and a mix of letters and digits.

Nothing here ever returns the matched text itself: :func:`mask` keeps at most a public prefix (``sk-``,
``AKIA``, ``ghp_``) or one leading character, and the findings carry only the masked form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# kind -> (finding code, what it is, for the message)
KINDS: dict[str, tuple[str, str]] = {
    "openai_key": ("secret", "an OpenAI API key"),
    "aws_access_key": ("secret", "an AWS access key id"),
    "github_token": ("secret", "a GitHub token"),
    "slack_token": ("secret", "a Slack token"),
    "slack_webhook": ("secret", "a Slack webhook URL"),
    "private_key": ("secret", "a private key block"),
    "jwt": ("secret", "a JSON Web Token"),
    "credential": ("secret", "a password or key assigned in the text"),
    "high_entropy": ("secret", "a high-entropy token that looks like a key or password"),
    "email": ("personal_data", "an e-mail address"),
    "phone": ("personal_data", "a phone number"),
    "credit_card": ("personal_data", "a credit-card number that passes the Luhn check"),
    "iban": ("personal_data", "an IBAN that passes the mod-97 check"),
}

_OPENAI = re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")
_AWS = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")
_GITHUB = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")
_SLACK = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")
_SLACK_HOOK = re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{8,}")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}")
_CREDENTIAL = re.compile(
    r"(?i)\b(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
    r"\s*[:=]\s*[\"']?(?P<value>[^\s\"',;]{8,})"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
# A run of digits with the separators phone, card and IBAN numbers use; classified after matching.
_NUMBERISH = re.compile(r"(?<![\w+])(?:\+|\b)[0-9(][0-9 ().-]{7,}[0-9]\b")
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{32,}")

_HAS_DIGIT = re.compile(r"[0-9]").search
# Every keyword _CREDENTIAL starts with holds one of these (lower-cased).
_CREDENTIAL_WORDS = ("pass", "pwd", "secret", "key", "token")

# Reserved for documentation (RFC 2606 / 6761): never anyone's address.
DEFAULT_ALLOW = (r"@example\.(?:com|org|net)$", r"@[A-Za-z0-9.-]+\.(?:example|test|invalid|localhost)$")


@dataclass(frozen=True)
class Hit:
    """One match: its kind and its masked form (the text itself is not kept)."""

    kind: str
    masked: str

    @property
    def code(self) -> str:
        return KINDS[self.kind][0]


def mask(kind: str, text: str) -> str:
    """``text`` with all but a public prefix (or its first character) replaced by ``*`` (at most 12)."""
    keep = 1
    for prefix in ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-", "github_pat_", "-----BEGIN"):
        if text.startswith(prefix):
            keep = len(prefix)
            break
    else:
        if kind in ("aws_access_key", "github_token", "slack_token", "jwt"):
            keep = 4 if kind != "jwt" else 3
        elif kind == "slack_webhook":
            keep = len("https://hooks.slack.com/")
        elif kind == "email":
            user, _, domain = text.partition("@")
            return f"{user[:1]}***@{domain[:1]}***"
        elif kind in ("phone", "credit_card", "iban"):
            keep = 2 if kind == "iban" else 0
    if kind == "private_key":
        return "-----BEGIN *** PRIVATE KEY-----"
    stars = "*" * min(12, max(3, len(text) - keep))
    return f"{text[:keep]}{stars}"


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(token: str) -> bool:
    """Random-looking: letters and digits mixed, and at least 4.2 bits per character (hex digests stay
    below 4.0, so git hashes and SHA-256 sums are not reported)."""
    return (
        any(c.isdigit() for c in token)
        and any(c.isalpha() for c in token)
        and not token.startswith(("http", "www"))
        and _entropy(token) >= 4.2
    )


def _classify_number(text: str) -> str | None:
    digits = "".join(c for c in text if c.isdigit())
    plain = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and plain.isdigit() and digits[0] in "3456" and _luhn(digits):
        return "credit_card"
    separators = sum(1 for c in text if c in " ().-")
    if 9 <= len(digits) <= 15 and (text.startswith("+") or separators >= 2 or "(" in text):
        return "phone"
    return None


class Scanner:
    """Finds secrets and personal data in one text; ``allow`` holds regular expressions whose matches
    (searched in the matched text) are not reported."""

    def __init__(self, allow: Iterable[str] = DEFAULT_ALLOW, *, kinds: Iterable[str] | None = None) -> None:
        self.allow = [re.compile(p) for p in allow]
        self.kinds = set(KINDS if kinds is None else kinds)
        self._checks: list[tuple[Callable[[str], bool], re.Pattern[str], str]] = [
            (lambda s: "sk-" in s, _OPENAI, "openai_key"),
            (lambda s: "AKIA" in s or "ASIA" in s or "ABIA" in s or "ACCA" in s, _AWS, "aws_access_key"),
            (lambda s: "gh" in s and "_" in s, _GITHUB, "github_token"),
            (lambda s: "xox" in s, _SLACK, "slack_token"),
            (lambda s: "hooks.slack" in s, _SLACK_HOOK, "slack_webhook"),
            (lambda s: "-----BEGIN" in s, _PRIVATE_KEY, "private_key"),
            (lambda s: "eyJ" in s, _JWT, "jwt"),
            (lambda s: "@" in s, _EMAIL, "email"),
        ]

    def _allowed(self, text: str) -> bool:
        return any(p.search(text) for p in self.allow)

    @staticmethod
    def suspicious(text: str) -> bool:
        """A cheap test that is True for every text with a hit: each kind needs one character or short
        literal that plain prose seldom holds (a digit, ``@``, ``sk-``, ``eyJ``, ``gh`` with ``_``, ``AKIA``,
        a keyword before ``:`` or ``=``...); single characters are found by ``memchr``, so ordinary text
        costs well under a microsecond and no regular expression."""
        if (
            "@" in text
            or "0" in text
            or "1" in text
            or "2" in text
            or "3" in text
            or "4" in text
            or "5" in text
            or "6" in text
            or "7" in text
            or "8" in text
            or "9" in text
            or "eyJ" in text
        ):
            return True
        if "-" in text and ("sk-" in text or "xox" in text or "-----BEGIN" in text):
            return True
        if "_" in text and "gh" in text:
            return True
        if "A" in text and ("AKIA" in text or "ASIA" in text or "ABIA" in text or "ACCA" in text):
            return True
        if ":" in text or "=" in text:
            if "hooks.slack" in text:
                return True
            lowered = text.lower()
            return any(w in lowered for w in _CREDENTIAL_WORDS)
        return False

    def scan(self, text: str) -> list[Hit]:
        """Every hit in ``text``, in order of kind; an empty list for ordinary text."""
        if not self.suspicious(text):
            return []
        hits: list[Hit] = []
        taken: list[tuple[int, int]] = []

        def add(kind: str, start: int, end: int, matched: str) -> None:
            if kind not in self.kinds or self._allowed(matched):
                return
            if any(s <= start < e or start <= s < end for s, e in taken):
                return  # already reported as something more specific
            taken.append((start, end))
            hits.append(Hit(kind, mask(kind, matched)))

        for test, pattern, kind in self._checks:
            if test(text):
                for m in pattern.finditer(text):
                    add(kind, m.start(), m.end(), m.group(0))
        if "=" in text or ":" in text:
            lowered = text.lower()
            if any(w in lowered for w in _CREDENTIAL_WORDS):
                for m in _CREDENTIAL.finditer(text):
                    add("credential", m.start("value"), m.end("value"), m.group("value"))
        if _HAS_DIGIT(text) is not None:
            for m in _IBAN.finditer(text):
                if _iban_ok(m.group(0)):
                    add("iban", m.start(), m.end(), m.group(0))
                else:  # IBAN-shaped: its digits are not a card or phone number either
                    taken.append((m.start(), m.end()))
            for m in _NUMBERISH.finditer(text):
                number = _classify_number(m.group(0))
                if number is not None:
                    add(number, m.start(), m.end(), m.group(0))
            # Random tokens almost always hold a digit; prose without digits skips this scan.
            if len(text) >= 32:
                for m in _LONG_TOKEN.finditer(text):
                    if _high_entropy(m.group(0)):
                        add("high_entropy", m.start(), m.end(), m.group(0))
        return hits


def mask_text(text: str, scanner: Scanner | None = None) -> str:
    """``text`` with every secret and personal datum the scanner finds replaced by its masked form."""
    scanner = scanner or Scanner(allow=())
    out = text
    for test, pattern, kind in scanner._checks:
        if test(out):
            out = pattern.sub(lambda m, k=kind: mask(k, m.group(0)), out)  # type: ignore[misc]
    out = _CREDENTIAL.sub(lambda m: m.group(0)[: m.start("value") - m.start()] + "***", out)
    out = _LONG_TOKEN.sub(
        lambda m: mask("high_entropy", m.group(0)) if _high_entropy(m.group(0)) else m.group(0), out
    )

    def number(m: re.Match[str]) -> str:
        found = _classify_number(m.group(0))
        return m.group(0) if found is None else mask(found, m.group(0))

    out = _IBAN.sub(lambda m: mask("iban", m.group(0)) if _iban_ok(m.group(0)) else m.group(0), out)
    return _NUMBERISH.sub(number, out)
