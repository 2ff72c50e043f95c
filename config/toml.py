"""Writing a config mapping back as TOML: for the demo config of `dev.py up`, the tests and the benchmarks
(tomllib reads TOML but cannot write it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


# tables whose values are data, written inline (`segments = { vip = 100500 }`), not as sub-tables
INLINE_TABLES = frozenset({"segments"})


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text of a config mapping: scalars first, then each table, nested tables as [a.b]."""
    lines: list[str] = []

    def table(prefix: str, node: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, Mapping) or k in INLINE_TABLES}
        if prefix and (scalars or not node):
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in node.items():
            if k not in scalars:
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines) + "\n"


def write(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(dumps(data))
    return path
