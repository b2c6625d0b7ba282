"""`eksflow check [PATH...]` (`make check-dags`): what the platform's tests hold every DAG to, for the files named.

1. parse with the network closed (a parse-time AWS call or Variable read is an import error naming the host);
2. the platform's rules (eksflow.checks.rules) and role fit (eksflow.checks.role_fit);
3. a dry end-to-end run: `airflow dags test` with the params' defaults, the chart's airflow.cfg, against the
   emulator over HTTP (seeded) — unless the DAG file opts out with ``DRY_RUN_OPT_OUT = "<reason>"``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eksflow.connections import assumed_role_connections, local_connections
from eksflow_dev.local.offline import REGION

# What a deployment sets for the DAGs (the chart in EKS, the local stack here); values need not exist.
SETTINGS_ENV = {
    "EKSFLOW_ENV": "dev",
    "EKSFLOW_ECS_SUBNETS": "subnet-0a,subnet-0b",
    "EKSFLOW_ECS_SECURITY_GROUPS": "sg-0a",
}
# For a parse in a process without the network guard: anything that tried AWS would be sent here, and refused.
PARSE_ENV = {
    **SETTINGS_ENV,
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AIRFLOW_CONN_AWS_ECS_RUNNER": '{"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}',
}
OPT_OUT = "DRY_RUN_OPT_OUT"
MIN_OPT_OUT_REASON = 20
RUN_TIMEOUT_SECONDS = 600


@dataclass
class Report:
    dag_files: dict[str, str] = field(default_factory=dict)  # dag_id -> file
    problems: list[str] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)  # dag_id -> "success" | "skipped: …" | "failed: …"
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        return not self.problems and all(not state.startswith("failed") for state in self.runs.values())


def parse_offline(paths: list[Path], settings_env: dict[str, str] | None = None) -> dict:
    """The JSON report of eksflow_dev.dagcheck.offline_parse for `paths`, run in a fresh process with the DAG
    settings of `settings_env` (default SETTINGS_ENV)."""
    from eksflow_dev.local.offline import offline_env

    result = subprocess.run(
        [sys.executable, "-m", "eksflow_dev.dagcheck.offline_parse", *map(str, paths)],
        env={
            **offline_env(),
            **(SETTINGS_ENV if settings_env is None else settings_env),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # DAG files may import modules beside them (Airflow puts the DAGs folder on sys.path).
            "AIRFLOW__CORE__DAGS_FOLDER": str(paths[0] if paths[0].is_dir() else paths[0].parent),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"parsing {', '.join(map(str, paths))} crashed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def opt_out_reason(dag_file: Path) -> str | None:
    """The module-level ``DRY_RUN_OPT_OUT = "<reason>"`` of a DAG file, read without importing it."""
    for node in ast.parse(dag_file.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == OPT_OUT for t in node.targets):
            value = node.value.value if isinstance(node.value, ast.Constant) else None
            if not isinstance(value, str) or len(value.strip()) < MIN_OPT_OUT_REASON:
                raise ValueError(
                    f"{dag_file}: {OPT_OUT} must be a string saying why the DAG cannot run against the emulator "
                    f"(at least {MIN_OPT_OUT_REASON} characters), got {value!r}"
                )
            return value.strip()
    return None


def _import_error_line(file: str, error: str) -> str:
    last = [line for line in error.strip().splitlines() if line.strip()][-1]
    return f"{file}: import failed: {last.strip()}"


def _parse_problems(files: set[str], import_errors: dict[str, str], attempts: list[dict]) -> list[str]:
    """Per named file: its first parse-time reach for the network, a Variable or a Connection — whether the file
    then failed to import or swallowed the error — else its import error."""
    problems = []
    for file in sorted(files | set(import_errors)):
        reached = [a for a in attempts if a["file"] and Path(a["file"]).resolve() == Path(file).resolve()]
        if reached:
            problems.append(reached[0]["message"])
        elif file in import_errors:
            problems.append(_import_error_line(file, import_errors[file]))
    return problems


def _named(file: str, paths: list[Path]) -> bool:
    path = Path(file).resolve()
    return any(path == named or named in path.parents for named in paths)


@dataclass
class Parsed:
    report: Report
    assets: dict[str, dict[str, list[str]]]  # every parsed DAG -> consumes/produces (asset URIs)
    files: dict[str, str]  # every parsed DAG -> file


def static_checks(paths: list[Path]) -> Parsed:
    """Parse the folders of `paths` (producers of the assets a named DAG consumes may live beside it); report on
    the DAGs of the named files only."""
    folders = sorted({p if p.is_dir() else p.parent for p in paths})
    parsed = parse_offline(folders)
    named = {dag_id: file for dag_id, file in parsed["files"].items() if _named(file, paths)}
    result = Report(dag_files=named)
    errors = {f: e for f, e in parsed["import_errors"].items() if _named(f, paths)}
    attempted = {a["file"] for a in parsed["connect_attempts"] if a["file"] and _named(a["file"], paths)}
    result.problems += _parse_problems(attempted, errors, parsed["connect_attempts"])
    for dag_id in sorted(named):
        result.problems += parsed["problems"][dag_id]
    return Parsed(result, parsed["assets"], parsed["files"])


def run_order(named: list[str], assets: dict[str, dict[str, list[str]]]) -> list[str]:
    """The named DAGs with, before each, the DAGs producing the assets it is scheduled on (transitively)."""
    producers = {uri: sorted(d for d, edges in assets.items() if uri in edges["produces"]) for uri in
                 {uri for edges in assets.values() for uri in edges["consumes"]}}  # fmt: skip
    order: list[str] = []

    def visit(dag_id: str, path: tuple[str, ...]) -> None:
        if dag_id in order or dag_id in path:
            return
        for uri in assets.get(dag_id, {}).get("consumes", []):
            for producer in producers.get(uri, []):
                visit(producer, (*path, dag_id))
        order.append(dag_id)

    for dag_id in sorted(named):
        visit(dag_id, ())
    return order


@dataclass
class DryRuns:
    states: dict[str, str]  # dag_id -> "success" | "skipped: …" | "failed …"
    action_problems: list[str]  # actions outside the callers' roles' IAM policies (empty when not audited)
    note: str = ""  # why the action-level check did not run, if it did not


def dry_runs(order: list[str], files: dict[str, str], workdir: Path, progress=print) -> DryRuns:
    """`airflow dags test` of each DAG in `order` on a new Airflow home and seeded emulator (see audited_runs)."""
    from eksflow_dev.dagcheck.home import migrated_home
    from eksflow_dev.local.emulator import running_emulator

    with ThreadPoolExecutor(max_workers=1) as pool:
        migrating = pool.submit(migrated_home, workdir / "airflow", Path(files[order[0]]).parent)
        with running_emulator(workdir / "emulator") as emulator:
            dag_files = {dag_id: files[dag_id] for dag_id in order}
            return audited_runs(migrating, emulator, dag_files, workdir, progress)


def audited_runs(home, emulator, dag_files: dict[str, str], workdir: Path, progress=print) -> DryRuns:
    """run_dags with the emulator's IAM audit on and each role's connection assuming the role terraform/modules/irsa
    makes (applied to the emulator; eksflow_dev.dagcheck.actions) where terraform is installed. `home`: an
    AirflowHome, or a future of one (made while Terraform applies)."""
    from eksflow_dev import terraform_cli
    from eksflow_dev.cluster import iam_roles
    from eksflow_dev.dagcheck import actions

    settings_env = emulator.seeded.settings_env
    if terraform_cli.find_terraform() is None:
        connections = None
        note = f"action-level role fit NOT checked: terraform is missing ({terraform_cli.INSTALL_HINT})"
    else:
        roles = iam_roles.apply(workdir / "terraform", emulator.url, settings_env)["task_role_arns"]
        connections, note = assumed_role_connections(emulator.url, REGION, roles), ""
        actions.start_audit(emulator.url)
    home = home.result() if hasattr(home, "result") else home
    try:
        states = run_dags(home, emulator, dag_files, progress, connections=connections)
        audited = [] if connections is None else actions.audit_problems(emulator.url, settings_env["EKSFLOW_ENV"])
    finally:
        if connections is not None:
            actions.stop_audit(emulator.url)
    return DryRuns(states, audited, note)


def run_dags(home, emulator, dag_files: dict[str, str], progress=print, connections=None) -> dict[str, str]:
    """`airflow dags test` of each DAG (in the given order) with its params' defaults against the emulator, unless
    its file opts out: dag_id -> "success", "skipped: <reason>" or "failed (exit N); the run's last lines: …".
    `connections`: the roles' connections (default: the emulator's fixed keys); given, every AWS request names
    its task (eksflow_dev/dagcheck/instrument) for the emulator's IAM audit."""
    from eksflow_dev.dagcheck.actions import INSTRUMENT

    env = {
        # Connections the caller exports (a throwaway database a task opens, e.g. a queue-table bridge's); the
        # roles' AWS connections below always win: the dry run's AWS is the emulator's.
        **{name: value for name, value in os.environ.items() if name.startswith("AIRFLOW_CONN_")},
        **(connections or local_connections(emulator.url, REGION)),
        **emulator.seeded.settings_env,
        "AWS_ENDPOINT_URL": emulator.url,
    }
    if connections:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(INSTRUMENT), home.env.get("PYTHONPATH", "")]))
    states: dict[str, str] = {}
    for dag_id, file in dag_files.items():
        reason = opt_out_reason(Path(file))
        if reason:
            states[dag_id] = f"skipped: {reason}"
            continue
        started = time.monotonic()
        run = home.run(
            "dags", "test", dag_id, "-f", file,
            extra_env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(Path(file).resolve().parent)},
            timeout=RUN_TIMEOUT_SECONDS,
        )  # fmt: skip
        if run.returncode == 0:
            states[dag_id] = "success"
        else:
            tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-40:])
            states[dag_id] = f"failed (exit {run.returncode}); the run's last lines:\n{tail}"
        progress(f"  dry run {dag_id}: {states[dag_id].splitlines()[0]} ({time.monotonic() - started:.0f} s)")
    return states


def check(paths: list[Path], *, run: bool = True, progress=print) -> Report:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"no such DAG file or folder: {', '.join(missing)}")
    progress(f"parse with the network closed, rules, role fit: {', '.join(map(str, paths))}")
    parsed = static_checks(paths)
    report = parsed.report
    if run and report.dag_files and not report.problems:
        order = run_order(list(report.dag_files), parsed.assets)
        with tempfile.TemporaryDirectory(prefix="eksflow-check-") as workdir:
            ran = dry_runs(order, parsed.files, Path(workdir), progress)
        report.runs = {d: s for d, s in ran.states.items() if d in report.dag_files}
        report.runs.update({f"{d} (upstream)": s for d, s in ran.states.items() if d not in report.dag_files})
        report.problems += ran.action_problems
        report.notes += [ran.note] if ran.note else []
    return report


def render(report: Report, *, ran: bool) -> str:
    lines = [f"DAGs: {', '.join(sorted(report.dag_files)) or 'none found'}"]
    lines += [f"  PROBLEM {problem}" for problem in report.problems]
    for dag_id, state in sorted(report.runs.items()):
        lines.append(f"  dry run {dag_id}: {state}")
    if report.problems and ran and not report.runs:
        lines.append("  (dry runs start once the problems above are fixed)")
    lines += [f"  NOTE {note}" for note in report.notes]
    lines.append("OK" if report.ok and report.dag_files else "FAILED")
    return "\n".join(lines)


def main(paths: list[str], *, run: bool = True) -> int:
    report = check([Path(p).resolve() for p in paths or ["dags"]], run=run)
    print(render(report, ran=run))
    return 0 if report.ok and report.dag_files else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
