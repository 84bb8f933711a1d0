"""Input checks for queue actions: a person's name and a note, checked before anything is written."""

from __future__ import annotations

from typing import Any

from beacons.errors import InvalidInput

MAX_NAME_CHARS = 100
MAX_NOTE_CHARS = 5000


def clean_name(value: Any, field_name: str = "by") -> str:
    """A person's name for the history: required, one line, at most 100 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field_name, "is required: the name of the person doing this")
    text = " ".join(value.split())
    if len(text) > MAX_NAME_CHARS:
        raise InvalidInput(field_name, f"is longer than {MAX_NAME_CHARS} characters")
    return text


def clean_note(value: Any, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("text" if required else "note", "must be non-empty text")
    if len(value) > MAX_NOTE_CHARS:
        raise InvalidInput("text" if required else "note", f"is longer than {MAX_NOTE_CHARS} characters")
    return value.strip()
