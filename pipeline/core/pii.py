"""Caller numbers are PII: they are kept only as a keyed hash (HMAC-SHA256).

The key comes from the environment (pipeline.core.config); it is never stored. A masked
form (country prefix and last two digits) is kept for wallboards, which is not
enough to recover the number.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.errors import OperatorError

# What the fingerprint hashes: a constant, so the same key always gives the same fingerprint.
_FINGERPRINT_MESSAGE = b"callpulse pii key fingerprint v1"

_NOT_DIGIT = re.compile(r"[^\d]")
# Runs that look like phone numbers inside text we could not parse: 7+ digits,
# optionally with a leading + and separators (not tabs or line breaks: those part fields).
_PHONE_LIKE = re.compile(r"\+?\d(?:[ \-().]*\d){6,}")


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
        return self.key_of_normalized(normalize_number(number))

    def key_of_normalized(self, number: str) -> str:
        """The key of a number already through ``normalize_number`` (or ``normalized_numbers``)."""
        cached = self._cache.get(number)
        if cached is not None:
            return cached
        digest = hmac.digest(self._key, number.encode(), "sha256").hex()[:32]
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[number] = digest
        return digest


def key_fingerprint(key: bytes) -> str:
    """A keyed hash of a constant: tells two keys apart without revealing either."""
    return hmac.digest(key, _FINGERPRINT_MESSAGE, "sha256").hex()[:32]


class PiiKeyMismatch(OperatorError):
    """The database's callers were hashed with another key."""

    def __init__(self, db: object, stored: str, given: str) -> None:
        super().__init__(
            f"{db}: written with a different CALLPULSE_PII_KEY (key fingerprint {stored[:12]}, this key's "
            f"{given[:12]}); its callers would get new hashes and repeat contacts would no longer match: "
            "set the key this database was written with, or use another --db"
        )


def normalized_numbers(numbers: pl.Expr) -> pl.Expr:
    """``normalize_number`` for a whole column at once (a batch pays one regex pass)."""
    digits = numbers.str.replace_all(r"[^\d]", "")
    return pl.when(numbers.str.strip_chars().str.starts_with("+")).then(pl.lit("+") + digits).otherwise(digits)


def mask_number(number: str) -> str:
    """``+8613800000001`` → ``+86*********01``: enough to tell callers apart on a board."""
    return mask_normalized(normalize_number(number))


def mask_normalized(n: str) -> str:
    """``mask_number`` of a number already normalized."""
    if len(n) <= 4:
        return "*" * len(n)
    head = 3 if n.startswith("+") else 0
    return n[:head] + "*" * (len(n) - head - 2) + n[-2:]


def mask_phone_like(text: str) -> str:
    """Mask every phone-number-like digit run in free text (unparseable records)."""
    return _PHONE_LIKE.sub(lambda m: "#" * len(m.group(0)), text)


def scrub_raw(raw: str | None, caller: str | None, key: str | None) -> str | None:
    """The raw text of a dead letter with its caller number out of the clear.

    ``caller`` is the caller value the record was read with (any spelling), ``key``
    its hash. A JSON object (a native line, a CSV or Parquet row, a contact record)
    keeps its shape and stays valid JSON: its ``caller`` field, whatever its type,
    becomes ``hmac:<key>``, as does any other value holding the same number (a
    contact record's ``CustomerEndpoint.Address``). Any other text (a queue_log or
    mapped CSV line) has its phone-number-like digit runs masked, and the caller's
    value, where it stands as a whole field, replaced by ``hmac:<key>``.
    """
    if raw is None:
        return None
    hashed = f"hmac:{key}" if key else None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict):
        if hashed is not None:
            digits = _NOT_DIGIT.sub("", caller or "")
            digits = digits if len(digits) >= 5 else ""  # too short to tell apart from other values
            value = _replace_number(value, (caller or "").strip(), digits, hashed)
            if "caller" in value:
                value["caller"] = hashed
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = mask_phone_like(raw)
    if hashed is not None and caller and caller.strip():
        whole_field = re.compile(r"(?<![\w+])" + re.escape(caller.strip()) + r"(?!\w)")
        text = whole_field.sub(lambda _: hashed, text)
    return text


def _replace_number(value: Any, caller: str, digits: str, hashed: str) -> Any:
    """``value`` with every scalar that is the caller's number (or holds its text) hashed."""
    if isinstance(value, dict):
        return {k: _replace_number(v, caller, digits, hashed) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_number(v, caller, digits, hashed) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return hashed if digits and _NOT_DIGIT.sub("", repr(value)) == digits else value
    if isinstance(value, str):
        if digits and _NOT_DIGIT.sub("", value) == digits:
            return hashed
        if len(caller) >= 4 and caller in value:
            return value.replace(caller, hashed)
    return value


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
