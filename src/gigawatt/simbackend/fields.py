"""Typed reads of request fields, each failure a 400 that names the field."""

from __future__ import annotations

from typing import Any

from gigawatt.simbackend.core import RequestError


def string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(key, "a non-empty string", value)
    return value


def integer(body: dict[str, Any], key: str, *, minimum: int, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    # bool is an int subclass, and `true` is no token count.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _invalid(key, f"an integer >= {minimum}", value)
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(key, "a boolean", value)
    return value


def strings(value: Any, key: str, *, most: int) -> tuple[str, ...]:
    """A string or a list of strings (at most `most`), as a tuple; None is empty."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or len(value) > most
        or not all(isinstance(s, str) and s for s in value)
    ):
        raise _invalid(key, f"a list of at most {most} non-empty strings", value)
    return tuple(value)


def texts_of(content: Any, key: str) -> list[str]:
    """The texts in a message's content: a string, or its text parts (other parts skipped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _invalid(key, "a string or a list of content parts", content)
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _invalid(f"{key}.{index}", "an object with a `type`", part)
        if part["type"] == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _invalid(f"{key}.{index}.text", "a string", text)
            texts.append(text)
    return texts


def _invalid(key: str, expected: str, value: Any) -> RequestError:
    got = "nothing" if value is None else type(value).__name__
    if isinstance(value, int | float) and not isinstance(value, bool):
        got = repr(value)
    return RequestError(400, f"{key}: expected {expected}, got {got}", param=key)
