"""Action-level role fit for `eksflow check`'s dry runs: the task roles Terraform's module makes
(terraform/modules/irsa, applied to the emulator as for `make up IAM=1`), each role's connection assuming its
role, the emulator's IAM audit on (eksflow_dev.emulator.audit), and every action a task called outside its
role's policy reported naming the task, the action, the role and the policy file."""

from __future__ import annotations

from pathlib import Path

from eksflow.roles import ROLES
from eksflow_dev.emulator.control import control

INSTRUMENT = Path(__file__).resolve().parent / "instrument"  # sitecustomize: the task name on every AWS request
POLICY_FILE = "terraform/modules/irsa/policies.tf"


def start_audit(emulator_url: str) -> None:
    control(emulator_url, "iam-audit", "on")


def stop_audit(emulator_url: str) -> None:
    control(emulator_url, "iam-audit", "off")


def audit_problems(emulator_url: str, env: str) -> list[str]:
    roles_by_iam_name = {role.iam_role_name(env): role.name for role in ROLES.values()}
    problems = []
    for denial in control(emulator_url, "iam-audit")["denials"]:
        iam_role = denial["principal"].split(":assumed-role/", 1)[-1].split("/", 1)[0]
        role = roles_by_iam_name.get(iam_role, iam_role)
        problems.append(
            f"{denial['task'] or '(a task)'}: {denial['action']} on {denial['resource']} is outside role {role}'s IAM "
            f"policy ({iam_role}, {POLICY_FILE}): grant it there if the task needs it, or call it from a role that "
            "has it"
        )
    return problems
