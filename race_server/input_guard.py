"""What every JSON document from outside must satisfy before any code looks at it.

PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates, so such strings would only fail
later, deep inside a query, as a 500. Deep nesting overflows the parser's recursion and huge
integers cost quadratic time to convert (and overflow int64 columns), so both are refused here.
Pure: used by the HTTP edge (api.errors) and the websocket protocol.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 19  # int64 has 19 digits; anything longer cannot be an id, count or setting
INT64_MAX = 2**63 - 1


class UnsafeInput(ValueError):
    """The document is not acceptable; the message says why in words a client can act on."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise UnsafeInput(f"integer with {len(text.lstrip('-'))} digits; at most {MAX_INT_DIGITS} allowed")
    return int(text)


def _reject_constant(name: str) -> Any:
    raise UnsafeInput(f"{name} is not allowed")


def check_string(text: str, where: str = "a string") -> str:
    if "\x00" in text:
        raise UnsafeInput(f"{where} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeInput(f"{where} contains a lone surrogate (not valid Unicode)") from None
    return text


def check_value(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """Walk the decoded document iteratively: depth, strings (keys too) and integer range."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_string(item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -INT64_MAX - 1 <= item <= INT64_MAX:
                raise UnsafeInput("integer outside the 64-bit range")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise UnsafeInput(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        check_string(key, "a key")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def parse_json(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with the limits above; UnsafeInput (a ValueError) for anything refused."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_int=_parse_int, parse_constant=_reject_constant)
    except UnsafeInput:
        raise
    except RecursionError:
        raise UnsafeInput(f"nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UnsafeInput(f"not valid JSON: {error}") from None
    return check_value(data, max_depth)
