"""Crafted training and test files for the quality checks: every finding on a known line.

Secrets here are fake (made up for the tests, shaped like the real ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OPENAI_KEY = "sk-proj-Q7fT2mZk9LpX4vB8nR1sW6yC3hJ5dG0a"
AWS_KEY = "AKIAQ3EXAMPLEZ7K2M4N"
GITHUB_TOKEN = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s99"
SLACK_TOKEN = "xoxb-112233445566-778899001122-AbCdEfGhIjKlMnOp"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.c2lnbmF0dXJlLWZvci10ZXN0cw"
PASSWORD = "Tr0ub4dor&3xyz"
HIGH_ENTROPY = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LmNbVc"
EMAIL = "maria.gonzalez@acme-corp.io"
PHONE = "+44 20 7946 0958"
CARD = "4539 1488 0343 6467"  # passes Luhn
IBAN = "DE89 3704 0044 0532 0130 00"  # passes mod-97

SECRETS = [OPENAI_KEY, AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, JWT, PASSWORD, HIGH_ENTROPY]
PERSONAL = [EMAIL, PHONE, CARD, IBAN]

NATO = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec"
)
WORDS = [*NATO.split(), "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]


def chat(user: str, answer: str, system: str | None = "Classify the ticket.") -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def filler(i: int, n: int = 14) -> str:
    """A distinct prompt for example ``i`` (no two share three words in a row)."""
    return " ".join(f"{WORDS[(i * 7 + k * 3) % len(WORDS)]}{i}x{k}" for k in range(n))


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def clean_rows(n: int = 30) -> list[dict[str, Any]]:
    return [chat(filler(i), ("Billing", "Shipping", "Technical")[i % 3]) for i in range(n)]
