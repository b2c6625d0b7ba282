"""Generate the chart README's values table from values.schema.json and values.yaml (`make chart-docs`).

A test fails when the README's table is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "eksflow"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _type(node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "object")
    return "/".join(kind) if isinstance(kind, list) else kind


def _rows(schema: dict, node: dict, defaults: Any, path: str, rows: list[tuple[str, str, str, str]]) -> None:
    description = node.get("description", "")
    node = {**_resolve(schema, node), **({"description": description} if description else {})}
    properties = node.get("properties")
    # An object with its own description is documented as one row (e.g. resources, image).
    if properties and node.get("type", "object") == "object" and not description:
        for key, child in properties.items():
            child_default = defaults.get(key) if isinstance(defaults, dict) else None
            _rows(schema, child, child_default, f"{path}.{key}" if path else key, rows)
        return
    default = json.dumps(defaults, separators=(",", ":")) if defaults not in (None, "", {}, []) else ""
    if len(default) > 60:
        default = default[:57] + "..."
    rows.append((path, _type(node), default, node.get("description", "")))


def values_table(chart: Path = CHART) -> str:
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    rows: list[tuple[str, str, str, str]] = []
    _rows(schema, schema, defaults, "", rows)
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{k}` | {t} | {f'`{d}`' if d else ''} | {desc} |" for k, t, d, desc in rows]
    return "\n".join(lines)


def render_readme(readme: str, table: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    readme = CHART / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"{readme}: add the markers {START} and {END}", file=sys.stderr)
        return 1
    readme.write_text(render_readme(text, values_table()))
    print(f"wrote the values table into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
