"""The base of every settings section."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """A settings section: unknown keys and non-finite numbers are errors."""

    # Unknown keys are almost always typos in a config file: reject them instead of ignoring them.
    # No setting means anything at infinity or NaN: every float must be finite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _is_branch_tag(part: Any) -> bool:
    """Pydantic names the branch of a union it tried in an error's location
    (``list[tuple[str, str]]``, ``literal['all']``): not a setting's name."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def validation_lines(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """Pydantic's errors as one line per setting: its dotted path, what is wrong, what was given;
    an unknown setting with the known one it is closest to; a union's alternatives joined.

    Args:
        exc: the validation error of ``root.model_validate``.
        root: the settings model that was validated (where unknown names are looked up).
    """
    merged: dict[str, tuple[list[str], str]] = {}
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not _is_branch_tag(p))
        where = ".".join(str(p) for p in loc) or "(top level)"
        given = err.get("input")
        shown = "" if isinstance(given, dict) else f" (given: {given!r})"
        message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix, no news
        if err["type"] == "extra_forbidden":
            message += _close_setting(loc, root)
        messages, _ = merged.setdefault(where, ([], shown))
        if message not in messages:
            messages.append(message)
    return [f"  - {where}: {'; or '.join(m)}{shown}" for where, (m, shown) in merged.items()]


def _close_setting(loc: tuple, root: type[BaseModel]) -> str:
    """For an unknown setting at ``loc``: the known settings it is closest to (a typo's fix), or
    the section's settings when none is close."""

    def models_in(annotation) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]

    section: list[type[BaseModel]] = [root]
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list: the same models
            continue
        section = [
            m for model in section if part in model.model_fields
            for m in models_in(model.model_fields[part].annotation)
        ]  # fmt: skip
    known = sorted({name for model in section for name in model.model_fields})
    if not known:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"

    # Not a typo here: perhaps a setting of another section (text_columns is per dataset).
    def paths(model: type[BaseModel], prefix: str, depth: int = 0):
        for name, field in model.model_fields.items():
            yield name, prefix + name
            for sub in models_in(field.annotation) if depth < 4 else []:
                yield from paths(sub, f"{prefix}{name}.", depth + 1)

    elsewhere: dict[str, list[str]] = {}
    for name, dotted in paths(root, ""):
        elsewhere.setdefault(name, []).append(dotted)
    close = difflib.get_close_matches(str(loc[-1]), list(elsewhere), n=1, cutoff=0.8)
    if close:
        return "; did you mean " + " or ".join(repr(p) for p in elsewhere[close[0]]) + "?"
    return "; settings here: " + ", ".join(known)
