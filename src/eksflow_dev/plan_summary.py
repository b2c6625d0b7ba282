"""What a Terraform plan changes, for the deploy workflow's job summary: each changed resource's address and
action, and the counts — no attribute values. The summary is the run's front page, kept with it and shown to
everyone who opens the run; values (policies, names, network ranges, anything not marked sensitive) stay out of it
and in the plan job's log, where approvers review them."""

from __future__ import annotations

import json
from collections import Counter

ACTIONS = {  # terraform show -json resource_changes[].change.actions -> what the plan says
    ("create",): "create",
    ("update",): "update in place",
    ("delete",): "destroy",
    ("delete", "create"): "replace (destroy first)",
    ("create", "delete"): "replace (create first)",
    ("read",): "read",
}


def changes(plan: dict) -> list[tuple[str, str]]:
    """(address, action) of every resource the plan changes, in plan order; no-ops left out."""
    found = []
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if actions != ("no-op",):
            found.append((change["address"], ACTIONS.get(actions, "+".join(actions))))
    return found


def render(plan_json: str) -> str:
    plan = json.loads(plan_json)
    changed = changes(plan)
    counts = Counter(action for _, action in changed)
    outputs = sorted(name for name, change in plan.get("output_changes", {}).items() if change["actions"] != ["no-op"])
    lines = ["### Terraform plan", ""]
    if not changed and not outputs:
        return "\n".join([*lines, "No changes.", ""])
    lines.append(", ".join(f"{count} to {action}" for action, count in sorted(counts.items())) or "no resource changes")
    if changed:
        lines += ["", "| resource | action |", "| --- | --- |", *(f"| `{a}` | {action} |" for a, action in changed)]
    if outputs:
        lines += ["", "Outputs changing: " + ", ".join(f"`{name}`" for name in outputs)]
    lines += ["", "Values are not shown here; approvers review them in the plan job's log."]
    return "\n".join(lines) + "\n"
