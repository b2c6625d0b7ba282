"""docs/kit-reference.md is generated from the code (`make kit-docs`, src/eksflow_dev/kitdocs.py): current, and
complete — every settings field, role and kit helper is on it."""

from __future__ import annotations

import dataclasses

from eksflow import kit
from eksflow.roles import ROLES
from eksflow.settings import Settings
from eksflow_dev.kitdocs import PAGE, render_clean


def test_the_kit_reference_is_current():
    assert PAGE.read_text() == render_clean(), "docs/kit-reference.md is stale: run `make kit-docs`"


def test_the_kit_reference_names_every_setting_role_and_helper():
    page = PAGE.read_text()
    for item in dataclasses.fields(Settings):
        assert f"| `{item.name}` | `{item.metadata['variable']}` |" in page
    for role in ROLES:
        assert f"| `{role}` |" in page
    for name in kit.__all__:
        assert f"### `{name}" in page
