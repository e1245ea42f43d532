"""Caller numbers are PII: they are kept only as a keyed hash (HMAC-SHA256).

The key comes from the environment (pipeline.config); it is never stored. A masked
form (country prefix and last two digits) is kept for wallboards, which is not
enough to recover the number.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path

_NOT_DIGIT = re.compile(r"[^\d]")
# Runs that look like phone numbers inside text we could not parse: 7+ digits,
# optionally with a leading + and separators.
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s\-().]*\d){6,}")


def normalize_number(number: str) -> str:
    """Digits only, keeping a leading ``+``: ``+86 138-0000`` and ``+861380000`` match."""
    digits = _NOT_DIGIT.sub("", number)
    return ("+" + digits) if number.strip().startswith("+") else digits


class CallerHasher:
    """Hashes caller numbers with a key; remembers recent results (callers repeat)."""

    __slots__ = ("_key", "_cache")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the PII key must not be empty")
        self._key = key
        self._cache: dict[str, str] = {}

    def key_of(self, number: str) -> str:
        cached = self._cache.get(number)
        if cached is not None:
            return cached
        digest = hmac.digest(self._key, normalize_number(number).encode(), "sha256").hex()[:32]
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[number] = digest
        return digest


def mask_number(number: str) -> str:
    """``+8613800000001`` → ``+86*********01``: enough to tell callers apart on a board."""
    n = normalize_number(number)
    if len(n) <= 4:
        return "*" * len(n)
    head = 3 if n.startswith("+") else 0
    return n[:head] + "*" * (len(n) - head - 2) + n[-2:]


def mask_phone_like(text: str) -> str:
    """Mask every phone-number-like digit run in free text (unparseable records)."""
    return _PHONE_LIKE.sub(lambda m: "#" * len(m.group(0)), text)


def local_demo_key(folder: Path) -> tuple[bytes, bool]:
    """A key kept beside the demo database, made once; returns (key, created)."""
    path = folder / ".callpulse-demo-pii-key"
    if path.exists():
        return path.read_bytes().strip(), False
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    path.write_bytes(key)
    path.chmod(0o600)
    return key, True
