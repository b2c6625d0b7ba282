"""``eksflow`` command line: the role model as data (``roles``, the one command the platform image needs) and the
developer commands — chart values from Terraform, deploy, the image and revision checks of the workflows, kind, the
local cluster. Their code is the dev-only
package ``eksflow_dev`` (src/eksflow_dev, never in the image), imported only inside the command that runs; where
it is missing they stop with exit code 2 and say to run them from a checkout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_STATE_DIR = Path(".eksflow")
DEV_PACKAGE = "eksflow_dev"


def _cmd_roles(args) -> int:
    from eksflow.model import platform_model

    model = platform_model(env=args.env)
    if args.format == "json":
        print(json.dumps(model, indent=2, sort_keys=True))
    else:
        import yaml

        print(yaml.safe_dump(model, sort_keys=True), end="")
    return 0


def _cmd_chart_values(args) -> int:
    from eksflow_dev.chartvalues import render

    source = sys.stdin.read() if args.terraform_output == "-" else Path(args.terraform_output).read_text()
    text = render(source)
    if args.output == "-":
        print(text, end="")
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0


def _cmd_plan_summary(args) -> int:
    from eksflow_dev.plan_summary import render

    print(render(Path(args.plan_json).read_text()), end="")
    return 0


def _cmd_deploy(args) -> int:
    from eksflow_dev.deploy import Deploy, run

    try:
        deploy = Deploy(env=args.env, image_tag=args.image_tag, auto_approve=args.yes, stage=args.stage)
        run(deploy, dry_run=args.dry_run)
    except RuntimeError as failed:
        print(f"eksflow: deploy stopped: {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_check(args) -> int:
    from eksflow_dev.dagcheck.check import main as check

    return check(args.paths, run=not args.no_run)


def _append(path: str | None, text: str) -> None:
    """Append to a file GitHub reads after the step ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY); nothing without one."""
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)


def _cmd_check_revision(args) -> int:
    from eksflow_dev.revision import RevisionRefused, check_on

    try:
        commit = check_on(args.revision, args.branch)
    except RevisionRefused as refused:
        print(f"eksflow: refused: {refused}", file=sys.stderr)
        return 1
    _append(args.outputs, f"commit={commit}\n")
    print(f"commit {commit} is on {args.branch}")
    return 0


def _cmd_image(args) -> int:
    from eksflow_dev.ecr_image import ImageCheckFailed, Registry, check_commit, image_version, write_digest

    commit = check_commit("commit", args.commit)
    version = image_version(args.version_tag) if args.action == "retag" else ""
    registry = Registry(region=args.region)
    try:
        if args.action == "verify":
            image = registry.verify(commit, commit, allow_missing=args.allow_missing)
            if image is None:
                _append(args.outputs, "exists=false\n")
                print(f"no image {registry.repository}:{commit} yet")
                return 0
            if args.digest_file:
                write_digest(args.digest_file, image.digest)
            _append(args.outputs, f"exists=true\ndigest={image.digest}\n")
            _append(args.summary, image.summary("Image verified"))
            print(f"verified {registry.repository}:{commit} = {image.digest} (revision label {image.revision})")
        else:
            image, added = registry.retag(commit, commit, version)
            _append(args.summary, image.summary("Image released" if added else "Image already released"))
            print(f"{registry.repository}:{version} = {image.digest} ({'tagged now' if added else 'already tagged'})")
    except ImageCheckFailed as failed:
        print(f"eksflow: image check failed: {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_job_release(args) -> int:
    from eksflow_dev.job_release import ReleaseFailed, check_request, release

    request = check_request(env=args.env, job=args.job, image=args.image, git_sha=args.git_sha, region=args.region)
    try:
        outcome = release(request)
    except ReleaseFailed as failed:
        print(f"eksflow: job release stopped: {failed}", file=sys.stderr)
        return 1
    _append(args.outputs, outcome.outputs())
    _append(args.summary, outcome.summary())
    print(f"released job {request.job.name} to {request.env}: {outcome.release.image}")
    return 0


def _cmd_cluster_bootstrap(args) -> int:
    from eksflow_dev.deploy import cluster_bootstrap

    cluster_bootstrap(args.env, apply=args.apply)
    return 0


def _cmd_kind(args) -> int:
    from eksflow_dev import kind

    if args.what == "facts":
        print(kind.shell_facts(), end="")
    elif args.what == "namespace":
        from eksflow_dev.deploy import namespace_manifest

        print(namespace_manifest())
    else:
        from eksflow_dev.emulator.seed import seed

        if not args.endpoint_url:
            raise ValueError("kind seed needs --endpoint-url (the emulator, e.g. through kubectl port-forward)")
        print(kind.seeded_values(seed(args.endpoint_url, args.region).settings_env), end="")
    return 0


def _cmd_pipelines(args) -> int:
    from eksflow_dev.local.demo import RemoteAirflow, run_pipelines, summary_table

    if bool(args.api_url) == bool(args.login):
        raise ValueError(
            "pipelines needs one of --api-url (an Airflow without login, e.g. kind's port-forward) or --login "
            "(the login file `make up` prints, e.g. .eksflow/up/airflow-login.json)"
        )
    if args.login:
        from eksflow_dev.cluster.login import read_login_file

        remote = RemoteAirflow(*read_login_file(args.login))
    else:
        remote = RemoteAirflow(args.api_url)
    try:
        result = run_pipelines(remote, timeout=args.timeout)
    except (OSError, TimeoutError, RuntimeError) as failed:
        print(f"eksflow: pipelines stopped: {failed}", file=sys.stderr)
        return 1
    print()
    print(summary_table(result))
    for dag_id, run in result.runs.items():
        print(f"{dag_id}: {run['state']}")
    print(f"pipelines {'succeeded' if result.ok else 'FAILED'}")
    return 0 if result.ok else 1


def _cluster_stack(state_dir: Path, iam: bool):
    """The platform on the local cluster."""
    from eksflow_dev.cluster.stack import ClusterStack

    return ClusterStack(state_dir, iam=iam)


def _cmd_demo(args) -> int:
    from eksflow_dev.local.demo import demo, summary_table
    from eksflow_dev.local.processes import reset_state

    state_dir = args.state_dir / "demo"
    reset_state(state_dir)
    try:
        result = demo(_cluster_stack(state_dir, args.iam))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print()
    print(summary_table(result))
    print()
    for dag_id, run in result.runs.items():
        print(f"{dag_id}: {run['state']}")
    print(f"demo {'succeeded' if result.ok else 'FAILED'} in {result.seconds:.0f}s; logs: {state_dir / 'logs'}")
    return 0 if result.ok else 1


def _cmd_up(args) -> int:
    from eksflow_dev.cluster.stack import stop_from_state
    from eksflow_dev.local.demo import REFERENCE_DAGS

    state_dir = args.state_dir / "up"
    if stop_from_state(state_dir):
        print("stopped the previous local cluster")
    stack = _cluster_stack(state_dir, args.iam)
    try:
        stack.start()
        stack.api.wait_for_dags(REFERENCE_DAGS, timeout=180)
    except BaseException:
        stack.stop()
        raise
    kubeconfig = stack.cluster.layout.kubeconfig
    print(
        f"\nAirflow UI: {stack.api_url}  {_login_note(stack)}\n"
        f"AWS emulator: {stack.emulator_url}" + (_iam_note(stack) if args.iam else "") + "\n"
        f"kubectl: export KUBECONFIG={kubeconfig}; kubectl -n eksflow get pods\n"
        f"DAGs are paused: unpause and trigger them in the UI. Edits under dags/ reach the cluster by git-sync.\n"
        f"Logs: {stack.log_dir}\n"
        "Stop with: make down"
    )
    return 0


def _login_note(stack) -> str:
    if stack.api_login is None:
        return "(no login: the values layered make every visitor an admin)"
    return (
        f"log in as {stack.api_login.username}; the password is in {stack.login_file}"
        " (mode 0600, new at each `make up`, removed by `make down`)"
    )


def _iam_note(stack) -> str:
    return (
        " — IAM enforced with the roles Terraform made; an administrator's AWS environment for your shell:"
        f" source {stack.aws_admin_env}"
    )


def _cmd_down(args) -> int:
    from eksflow_dev.cluster.stack import stop_from_state

    stopped = stop_from_state(args.state_dir / "up")
    print(f"stopped: {', '.join(stopped)}" if stopped else "no local cluster was running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eksflow", description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="local cluster state (default .eksflow)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    roles = sub.add_parser("roles", help="print the role model and platform names (one home for the chart/Terraform)")
    roles.add_argument("--format", choices=("json", "yaml"), default="json")
    roles.add_argument("--env", default=None, help="also resolve per-environment names (IAM roles, buckets), e.g. dev")
    roles.set_defaults(func=_cmd_roles)

    values = sub.add_parser("chart-values", help="turn `terraform output -json` into a values layer for the chart")
    values.add_argument("--terraform-output", default="-", help="file with `terraform output -json` (default stdin)")
    values.add_argument("--output", default="-", help="values file to write (default stdout)")
    values.set_defaults(func=_cmd_chart_values)

    summary = sub.add_parser(
        "plan-summary", help="what a Terraform plan changes (addresses and actions, no values), as Markdown"
    )
    summary.add_argument("plan_json", help="`terraform show -json <planfile>` output")
    summary.set_defaults(func=_cmd_plan_summary)

    deploy = sub.add_parser(
        "deploy", help="terraform apply, chart values, namespace + DB Secret, helm upgrade, helm test"
    )
    deploy.add_argument("--env", required=True, help="dev or prod")
    deploy.add_argument("--image-tag", default="", help="image tag to deploy (the image workflow pushes the git SHA)")
    deploy.add_argument("--dry-run", action="store_true", help="print the exact commands, run nothing")
    deploy.add_argument("--yes", action="store_true", help="apply the Terraform plan without asking (CI approvals)")
    deploy.add_argument("--stage", default="all", help="all (default), infra (Terraform only) or release (the rest)")
    deploy.set_defaults(func=_cmd_deploy)

    check = sub.add_parser(
        "check",
        help="check DAG files as the platform's tests do: parse offline, rules, role fit, a dry run on the emulator",
    )
    check.add_argument("paths", nargs="*", help="DAG files or folders (default dags/)")
    check.add_argument("--no-run", action="store_true", help="skip the dry end-to-end runs (parse, rules, role fit)")
    check.set_defaults(func=_cmd_check)
    bootstrap = sub.add_parser(
        "cluster-bootstrap",
        help="the platform Namespace (restricted Pod Security) and the release's cluster-scoped RBAC (read that "
        "Namespace; the chart's cluster-scoped objects, by name), for a cluster admin to apply once",
    )
    bootstrap.add_argument("--env", required=True, help="dev or prod (reads build/chart-values-<env>.yaml)")
    bootstrap.add_argument("--apply", action="store_true", help="apply it with the current kubeconfig (an admin's)")
    bootstrap.set_defaults(func=_cmd_cluster_bootstrap)

    revision = sub.add_parser(
        "check-revision", help="refuse a commit that is not on main (the deploy and image-release jobs' first step)"
    )
    revision.add_argument("revision", help="full commit SHA, e.g. $GITHUB_SHA (a tag object is peeled to its commit)")
    revision.add_argument("--on", dest="branch", default="origin/main", help="branch (default origin/main)")
    revision.add_argument("--outputs", help="append commit=<sha> to this file (GitHub: $GITHUB_OUTPUT)")
    revision.set_defaults(func=_cmd_check_revision)

    image = sub.add_parser(
        "image", help="the Airflow image <commit> in ECR: verify its revision label, or add a release tag to it"
    )
    image_actions = image.add_subparsers(dest="action", required=True)
    verify = image_actions.add_parser("verify", help="check that :<commit> carries the revision label <commit>")
    verify.add_argument("commit", help="full commit SHA: the image tag and the revision it must carry")
    verify.add_argument("--allow-missing", action="store_true", help="no such image is not an error (exists=false)")
    verify.add_argument("--digest-file", help="write the image digest here (helm --set-file image.digest=...)")
    verify.add_argument("--outputs", help="append exists=… and digest=… to this file (GitHub: $GITHUB_OUTPUT)")
    verify.add_argument("--summary", help="append a Markdown table to this file (GitHub: $GITHUB_STEP_SUMMARY)")
    retag = image_actions.add_parser("retag", help="add a release's version tag to the verified :<commit> manifest")
    retag.add_argument("commit", help="full commit SHA of the release: the image tag and revision it must carry")
    retag.add_argument("version_tag", metavar="version-tag", help="the release's git tag, vX.Y.Z (image tag X.Y.Z)")
    retag.add_argument("--summary", help="append a Markdown table to this file (GitHub: $GITHUB_STEP_SUMMARY)")
    for command in (verify, retag):
        command.add_argument("--region", default=None, help="AWS region (default: the AWS environment's)")
    image.set_defaults(func=_cmd_image)

    job = sub.add_parser("job", help="a job repository's image carried to the pipelines (its release workflow)")
    job_actions = job.add_subparsers(dest="action", required=True)
    job_release = job_actions.add_parser(
        "release",
        help="push the built image under its git SHA (immutable), register the ecs job's revision pinned by digest, "
        "announce the release on the environment's release queue",
    )
    job_release.add_argument("--env", required=True, help="the platform environment, e.g. dev")
    job_release.add_argument("--job", required=True, help="the job (eksflow.jobs), e.g. etl-step")
    job_release.add_argument(
        "--image",
        required=True,
        help="the built image: an OCI layout, a folder or tar (docker buildx --output type=oci)",
    )
    job_release.add_argument("--git-sha", required=True, help="the full commit SHA it was built from, e.g. $GITHUB_SHA")
    job_release.add_argument("--region", default=None, help="AWS region (default: the AWS environment's)")
    job_release.add_argument("--outputs", help="append image=, digest=, tag=, … to this file (GitHub: $GITHUB_OUTPUT)")
    job_release.add_argument("--summary", help="append a Markdown table to this file (GitHub: $GITHUB_STEP_SUMMARY)")
    job_release.set_defaults(func=_cmd_job_release)

    kind = sub.add_parser("kind", help="names, namespace and seeded values for the kind scripts (kind/*.sh)")
    kind.add_argument("what", choices=("facts", "namespace", "seed"))
    kind.add_argument("--endpoint-url", default="", help="seed: the AWS emulator to seed")
    kind.add_argument("--region", default="eu-west-1", help="seed: region (default eu-west-1)")
    kind.set_defaults(func=_cmd_kind)

    pipelines = sub.add_parser(
        "pipelines", help="run the reference pipelines on a running Airflow (e.g. kind) and wait for success"
    )
    pipelines.add_argument(
        "--api-url", default="", help="Airflow api-server base URL without login, e.g. kind's http://127.0.0.1:18080"
    )
    pipelines.add_argument(
        "--login", type=Path, default=None, help="the login file of `make up` (URL and credentials), instead"
    )
    pipelines.add_argument("--timeout", type=float, default=900, help="seconds per DAG run (default 900)")
    pipelines.set_defaults(func=_cmd_pipelines)

    for name, func, text in (
        ("demo", _cmd_demo, "install the chart on the local cluster, run the reference pipelines, then stop"),
        ("up", _cmd_up, "the chart on the local cluster, kept running (Airflow UI on 127.0.0.1)"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "--iam",
            action="store_true",
            help="IAM enforced: the roles terraform/modules/irsa makes on the emulator (needs terraform)",
        )
        command.set_defaults(func=func)
    sub.add_parser("down", help="stop the stack started by 'up'").set_defaults(func=_cmd_down)
    return parser


def _developer_tooling_missing(error: ModuleNotFoundError) -> bool:
    """The dev-only package is not installed (the platform image); a missing module inside an installed
    eksflow_dev is a real error and is raised as such."""
    import importlib.util

    named = error.name == DEV_PACKAGE or (error.name or "").startswith(f"{DEV_PACKAGE}.")
    return named and importlib.util.find_spec(DEV_PACKAGE) is None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Absolute: the local cluster's kubeconfig names files under it, which kubectl and helm resolve from the
    # kubeconfig's own folder.
    args.state_dir = args.state_dir.resolve()
    try:
        return args.func(args)
    except ValueError as error:
        print(f"eksflow: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as missing:
        if not _developer_tooling_missing(missing):
            raise
        print(
            f"eksflow: error: 'eksflow {args.command}' is a developer command: its code (the {DEV_PACKAGE} package) "
            "is not installed here, as in the platform image, which holds only the runtime package. Run it from a "
            f"checkout of the repository: make venv, then .venv/bin/eksflow {args.command}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
