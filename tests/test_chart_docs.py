"""The chart README's values table is generated from the schema and must not be stale."""

from __future__ import annotations

import json

from eksflow_dev.chartdocs import CHART, END, START, render_readme, values_table


def test_values_table_is_current():
    readme = (CHART / "README.md").read_text()
    assert render_readme(readme, values_table()) == readme, "run `make chart-docs`"


def test_every_documented_key_has_a_description():
    table = values_table()
    for line in table.splitlines()[2:]:
        assert not line.rstrip().endswith("|  |"), line


def test_schema_is_strict_on_every_object():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node, path):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}")

    walk(schema, "values")
    for name, definition in schema["definitions"].items():
        walk(definition, name)


def test_markers_are_present():
    readme = (CHART / "README.md").read_text()
    assert START in readme and END in readme
