"""``make bench``: DAG parse time per file, `make check-dags` of one DAG, the demo's wall time, and what waiting
for AWS costs in worker pods
(``eksflow_dev.bench_aws``: pod-time slope, polling cost, task memory, fan-out). Prints tables; no assertions.

Parse time is measured in a fresh process per DAG file with Airflow already imported (as in the
dag-processor): *first* is the file's first parse, which also imports what it imports (the kit and the
Amazon provider); *repeat* is the median of later parses of the same file, imports cached — what each
re-parse costs the dag-processor. Goal: repeat <= 150 ms per file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eksflow_dev.cluster.cluster import REPO as REPO_ROOT
from eksflow_dev.dagcheck.check import SETTINGS_ENV

FAN_OUT_POOL_SLOTS = 8  # below the data pipeline's max_active_tis_per_dag (16): the pool is the ceiling

PARSE_GOAL_MS = 150.0
DEMO_GOAL_S = 120.0
CHECK_GOAL_S = 60.0
CHECKED_DAG = "aws_housekeeping.py"  # no upstream asset: one dry run, as for a DAG author's new DAG
_PARSE_SCRIPT = r"""
import json, statistics, sys, time, logging
import airflow, airflow.sdk
from airflow.dag_processing.dagbag import DagBag
logging.disable(logging.CRITICAL)
path = sys.argv[1]
t = time.perf_counter(); bag = DagBag(dag_folder=path); first = time.perf_counter() - t
assert not bag.import_errors, bag.import_errors
repeats = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); DagBag(dag_folder=path); repeats.append(time.perf_counter() - t)
print(json.dumps({"first": first, "repeat": statistics.median(repeats), "dags": len(bag.dag_ids)}))
"""

BENCH_ENV = SETTINGS_ENV


def parse_times(dags_folder: Path, repeats: int = 5) -> list[dict]:
    home = tempfile.mkdtemp(prefix="eksflow-bench-")
    env = {**os.environ, **BENCH_ENV, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    rows = []
    for path in sorted(dags_folder.glob("*.py")):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE_SCRIPT, str(path), str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        rows.append({"file": path.name, **data})
    return rows


def check_seconds(dag_file: Path) -> tuple[float, bool]:
    """`make check-dags DAGS=<one file>` as a DAG author runs it (warm venv): parse, rules, role fit, the dry run
    with the IAM audit (terraform/modules/irsa applied to the emulator when terraform is installed)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "check", str(dag_file)], capture_output=True, text=True, check=False
    )
    return time.monotonic() - started, result.returncode == 0


def demo_seconds() -> tuple[float, bool]:
    """`make demo` as users run it: the chart on the local cluster, the three pipelines."""
    from eksflow_dev.cluster.stack import ClusterStack
    from eksflow_dev.local.demo import demo
    from eksflow_dev.local.processes import reset_state

    state = REPO_ROOT / ".eksflow" / "bench-demo"
    reset_state(state)
    started = time.monotonic()
    result = demo(ClusterStack(state), progress=lambda _: None)
    return time.monotonic() - started, result.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-demo", action="store_true", help="skip the demo wall time")
    parser.add_argument("--skip-check", action="store_true", help="skip the time of `make check-dags` on one DAG")
    parser.add_argument(
        "--skip-aws",
        action="store_true",
        help="skip pod-time, memory and fan-out (the chart on the local cluster: ~50 min on 2 cores)",
    )
    parser.add_argument(
        "--scales",
        default="10,60",
        help="emulated AWS job seconds, low,high (default 10,60; an emulated ECS task takes at least 4 status reads, "
        "~8 s at the local 2 s poll, so a lower low does not shorten it)",
    )
    parser.add_argument("--partitions", type=int, default=8, help="data pipeline partitions in the pod-time runs")
    parser.add_argument("--fan-out", default="10,200", help="partition counts of the fan-out runs ('' to skip)")
    parser.add_argument("--skip-pod-time", action="store_true", help="skip pod-time and memory (~30 min)")
    parser.add_argument(
        "--ecs-pool-slots",
        type=int,
        default=FAN_OUT_POOL_SLOTS,
        help=f"slots of the ECS pool in the fan-out runs (default {FAN_OUT_POOL_SLOTS}: below the DAG's own limit)",
    )
    args = parser.parse_args(argv)
    try:
        low, high = (float(part) for part in args.scales.split(","))
        fan_sizes = tuple(int(part) for part in args.fan_out.split(",") if part.strip())
    except ValueError:
        parser.error("--scales takes two numbers (e.g. 10,60) and --fan-out whole numbers (e.g. 10,200)")
    if not 0 < low < high:
        parser.error(f"--scales {args.scales}: need 0 < low < high")
    if args.ecs_pool_slots < 1:
        parser.error(f"--ecs-pool-slots {args.ecs_pool_slots}: need a whole number >= 1")

    rows = parse_times(REPO_ROOT / "dags")
    print(f"{'benchmark':<52} {'value':>10}  {'goal':>10}  verdict")
    print("-" * 86)
    for row in rows:
        repeat_ms, first_ms = row["repeat"] * 1000, row["first"] * 1000
        verdict = "ok" if repeat_ms <= PARSE_GOAL_MS else "OVER"
        print(f"{'parse ' + row['file'] + ' (repeat)':<52} {repeat_ms:>8.1f}ms  {PARSE_GOAL_MS:>8.0f}ms  {verdict}")
        print(f"{'parse ' + row['file'] + ' (first, cold imports)':<52} {first_ms:>8.1f}ms  {'-':>10}")
    if not args.skip_check:
        seconds, ok = check_seconds(REPO_ROOT / "dags" / CHECKED_DAG)
        verdict = ("ok" if seconds <= CHECK_GOAL_S else "OVER") if ok else "CHECK FAILED"
        print(f"{'make check-dags DAGS=dags/' + CHECKED_DAG:<52} {seconds:>9.1f}s  {CHECK_GOAL_S:>9.0f}s  {verdict}")
    if not args.skip_demo:
        seconds, ok = demo_seconds()
        verdict = ("ok" if seconds <= DEMO_GOAL_S else "OVER") if ok else "DEMO FAILED"
        print(f"{'demo wall time (warm venv)':<52} {seconds:>9.1f}s  {DEMO_GOAL_S:>9.0f}s  {verdict}")
    if not args.skip_aws:
        from eksflow_dev.bench_aws import run

        scales = None if args.skip_pod_time else (low, high)
        print(run(scales, args.partitions, fan_sizes, args.ecs_pool_slots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
