"""The settings reference of ``docs/settings.md``, generated from :class:`RunConfig` (a test
checks that the document matches)."""

from __future__ import annotations

import json
import re
from enum import StrEnum

from pydantic import BaseModel

from transferflow.config.settings import RunConfig


def reference_markdown() -> str:
    """Markdown table of every setting (dotted name, type, default, meaning) for the README.

    Returns:
        The table; ``tests/unit/test_docs.py`` checks the README holds exactly this text.
    """

    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            if field.is_required():
                default = "required"
            else:
                value = field.get_default(call_default_factory=True)
                default = json.dumps(value, default=str)
            kind = str(ann).replace("typing.", "").replace("pathlib.", "")
            if isinstance(ann, type) and issubclass(ann, StrEnum):
                kind = "Literal[" + ", ".join(f"'{v.value}'" for v in ann) + "]"
            kind = re.sub(
                r"Annotated\[str \| Path, AfterValidator\(func=<function _location[^)]*\)\]",
                "path or URL",
                kind,
            ).replace("Optional[path or URL]", "path or URL or None")
            kind = kind.replace("<class '", "").replace("'>", "").replace("|", "or")
            if kind.startswith("Literal["):
                kind = "one of " + kind[len("Literal[") : -1].replace("'", "`")
            desc = (field.description or "").replace("|", "or")
            rows.append(f"| `{prefix}{name}` | {kind} | `{default}` | {desc} |")

    walk(RunConfig, "")
    return "\n".join(rows)
