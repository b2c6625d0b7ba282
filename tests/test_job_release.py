"""`eksflow job release` — the command a job repository's release workflow runs — against the emulator over HTTP,
on the seeded environment (each job released once from SEED_GIT_SHA, eksflow_dev.emulator.seed): the image is pushed
under its git SHA (immutable), an ecs job gets the revision of its family with exactly that digest and nothing else
changed (reused when re-run), and the release message on the environment's queue parses with the watcher's own
parser; a squatted tag, bad input and a failing step stop it saying what was and was not done."""

from __future__ import annotations

import json

import pytest

from eksflow.jobs import JOB_TAG_KEY, get_job, release_queue_name
from eksflow.releases import release_from_payload
from eksflow_dev.emulator.control import bootstrap_admin, control, set_iam_enforcement
from eksflow_dev.emulator.seed import SEED_GIT_SHA
from eksflow_dev.job_release import ANNOUNCE_ACTIONS, PUSH_ACTIONS, REGISTER_ACTIONS
from eksflow_dev.oci_layout import read_layout
from tests.conftest import running_emulator
from tests.support.ecr import REVISION_LABEL, push_image
from tests.support.releases import (
    ENV,
    built_image,
    container_image,
    eksflow,
    latest_revision,
    release_job,
    release_messages,
    without_image,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"
ETL = get_job("etl-step")
TRAIN = get_job("train")
FAMILY, REPOSITORY, CONTAINER = ETL.ecs_family(ENV), ETL.repository(ENV), ETL.container
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
JOB_TAGS = [{"key": JOB_TAG_KEY, "value": ETL.name}]  # what Terraform's revisions and the releases carry


def register_base_revision(ecs) -> dict:
    """The family's latest revision as Terraform may write it (registered here, not by the code under test): a
    sidecar, environment, logging, volumes, task-level sizes and roles — all of which a release must keep."""
    seeded = latest_revision(ecs, FAMILY)
    job = {
        "name": CONTAINER,
        "image": "placeholder:1",
        "essential": True,
        "memory": 1024,
        "cpu": 512,
        "environment": [{"name": "MODE", "value": "batch"}],
        "command": ["run"],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": False}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": ETL.log_group(ENV),
                "awslogs-region": "eu-west-1",
                "awslogs-stream-prefix": "etl",
            },
        },
    }
    sidecar = {
        "name": "metrics",
        "image": "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0",
        "essential": False,
        "memory": 256,
    }
    ecs.register_task_definition(
        family=FAMILY, taskRoleArn=seeded["taskRoleArn"], executionRoleArn=seeded["executionRoleArn"],
        networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024", memory="2048",
        containerDefinitions=[job, sidecar], volumes=[{"name": "scratch"}],
        runtimePlatform={"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}, tags=JOB_TAGS,
    )  # fmt: skip
    return latest_revision(ecs, FAMILY)


def outputs_of(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_an_ecs_jobs_release_registers_the_revision_with_exactly_the_pushed_digest_and_announces_it(
    fresh_emulator, tmp_path
):
    ecs, ecr = fresh_emulator.client("ecs"), fresh_emulator.client("ecr")
    before = register_base_revision(ecs)
    image = built_image(tmp_path / "image", SHA)
    digest = read_layout(image).digest
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    result = release_job(fresh_emulator.url, ETL.name, image, SHA, "--outputs", str(outputs), "--summary", str(summary))
    assert result.returncode == 0, result.stderr

    (pushed,) = ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": SHA}])["imageDetails"]
    assert pushed["imageDigest"] == digest, "the tag names this build's manifest"
    after = latest_revision(ecs, FAMILY)
    pinned = f"{REGISTRY}/{REPOSITORY}@{digest}"
    assert after["revision"] == before["revision"] + 1
    assert container_image(after, CONTAINER) == pinned
    assert without_image(after, CONTAINER) == without_image(before, CONTAINER), "nothing but the image changed"
    assert after["taskRoleArn"] == before["taskRoleArn"] and after["executionRoleArn"] == before["executionRoleArn"]

    assert outputs_of(outputs) == {
        "image": pinned,
        "digest": digest,
        "tag": SHA,
        "task_definition_arn": after["taskDefinitionArn"],
        "message_id": outputs_of(outputs)["message_id"],
    }
    assert f"| `{pinned}` | `{SHA}` | `{after['taskDefinitionArn']}` |" in summary.read_text()
    (body,) = release_messages(fresh_emulator.client("sqs"))
    release = release_from_payload(body, env=ENV)  # what the platform's AssetWatcher parses
    assert (release.job, release.image, release.git_sha, release.tag) == (ETL.name, pinned, SHA, SHA)
    assert release.task_definition_arn == after["taskDefinitionArn"]
    assert f"pushed {REPOSITORY}:{SHA} = {digest}" in result.stdout


def test_a_re_run_reuses_the_pushed_image_and_the_revision_and_announces_the_same_release_again(
    fresh_emulator, tmp_path
):
    ecs = fresh_emulator.client("ecs")
    image = built_image(tmp_path / "image", SHA, tar=True)  # a tar, as buildx's oci exporter writes by default
    first = release_job(fresh_emulator.url, ETL.name, image, SHA)
    revision = latest_revision(ecs, FAMILY)
    again = release_job(fresh_emulator.url, ETL.name, image, SHA)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert latest_revision(ecs, FAMILY)["taskDefinitionArn"] == revision["taskDefinitionArn"], "no second revision"
    assert f"{REPOSITORY}:{SHA} = {read_layout(image).digest} was pushed by an earlier run: reused" in again.stdout
    assert "reused (its latest revision runs the image)" in again.stdout
    bodies = release_messages(fresh_emulator.client("sqs"))
    assert len(bodies) == 2 and json.loads(bodies[0]) == json.loads(bodies[1])


def test_another_build_of_an_already_released_commit_releases_the_image_its_tag_names(fresh_emulator, tmp_path):
    """A workflow re-run rebuilds the commit (another digest: builds are not reproducible); the tag is immutable, so
    the image the first run pushed — verified by its revision label — is the release."""
    first = built_image(tmp_path / "first", SHA, b"first build")
    second = built_image(tmp_path / "second", SHA, b"second build")
    assert release_job(fresh_emulator.url, ETL.name, first, SHA).returncode == 0
    result = release_job(fresh_emulator.url, ETL.name, second, SHA)
    assert result.returncode == 0, result.stderr
    released = f"{REGISTRY}/{REPOSITORY}@{read_layout(first).digest}"
    assert f"this build ({read_layout(second).digest}) was not pushed: tags are immutable" in result.stdout
    assert container_image(latest_revision(fresh_emulator.client("ecs"), FAMILY), CONTAINER) == released


def test_a_sagemaker_jobs_release_registers_no_revision_and_announces_its_digest(fresh_emulator, tmp_path):
    control(fresh_emulator.url, "stats/reset", "")
    image = built_image(tmp_path / "image", SHA)
    outputs = tmp_path / "outputs"
    result = release_job(fresh_emulator.url, TRAIN.name, image, SHA, "--outputs", str(outputs))
    assert result.returncode == 0, result.stderr
    assert not [call for call in control(fresh_emulator.url, "stats")["calls"] if call.startswith("ecs:")]
    pinned = f"{REGISTRY}/{TRAIN.repository(ENV)}@{read_layout(image).digest}"
    assert outputs_of(outputs)["task_definition_arn"] == "" and outputs_of(outputs)["image"] == pinned
    (body,) = release_messages(fresh_emulator.client("sqs"))
    release = release_from_payload(body, env=ENV)
    assert (release.job, release.image, release.task_definition_arn) == (TRAIN.name, pinned, "")


@pytest.mark.parametrize(
    "labels", [{REVISION_LABEL: OTHER}, {"org.opencontainers.image.title": "x"}], ids=["another-commit", "no-label"]
)
def test_a_squatted_sha_tag_stops_the_release_before_any_revision_or_announcement(fresh_emulator, tmp_path, labels):
    ecs = fresh_emulator.client("ecs")
    squatter = push_image(fresh_emulator.client("ecr"), SHA, labels, repository=REPOSITORY)
    before = latest_revision(ecs, FAMILY)
    result = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA)
    assert result.returncode == 1
    found = labels.get(REVISION_LABEL, "(none)")
    assert (
        f"push {REPOSITORY}:{SHA} failed: {REPOSITORY}:{SHA} ({squatter}) has the revision label "
        f"{REVISION_LABEL}={found}, not {SHA}: it was not built from that commit by the job's release workflow"
    ) in result.stderr
    assert (
        f"Done: nothing. Not done: push {REPOSITORY}:{SHA}; register a revision of {FAMILY}; "
        f"announce on {release_queue_name(ENV)}."
    ) in result.stderr
    assert latest_revision(ecs, FAMILY) == before
    assert release_messages(fresh_emulator.client("sqs")) == []


def test_a_failing_step_says_what_was_done_and_what_was_not(fresh_emulator, tmp_path):
    """The family's latest revision lost the job's container: the image is pushed, no revision, no announcement."""
    ecs = fresh_emulator.client("ecs")
    latest = latest_revision(ecs, FAMILY)
    renamed = {**latest["containerDefinitions"][0], "name": "transform"}
    ecs.register_task_definition(
        family=FAMILY, containerDefinitions=[renamed], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", taskRoleArn=latest["taskRoleArn"], executionRoleArn=latest["executionRoleArn"],
        tags=JOB_TAGS,
    )  # fmt: skip
    result = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA)
    assert result.returncode == 1
    assert f"register a revision of {FAMILY} failed: task definition " in result.stderr
    assert "has no container 'etl' (its containers: 'transform')" in result.stderr
    assert (
        f"Done: push {REPOSITORY}:{SHA}. Not done: register a revision of {FAMILY}; announce on "
        f"{release_queue_name(ENV)}. re-running the job is safe"
    ) in result.stderr
    assert release_messages(fresh_emulator.client("sqs")) == []


def test_a_latest_revision_the_platform_did_not_make_is_never_copied_and_the_error_says_how_to_clear_it(
    fresh_emulator, tmp_path
):
    """An untagged revision on top of the family (registered by someone else — a DAG author's task before ecs-runner
    lost RegisterTaskDefinition, an admin): a release copying it would bless its content with the job's tag."""
    ecs = fresh_emulator.client("ecs")
    latest = latest_revision(ecs, FAMILY)
    hostile = {**latest["containerDefinitions"][0], "command": ["sh", "-c", "aws s3 cp s3://elsewhere ."]}
    foreign = ecs.register_task_definition(
        family=FAMILY, containerDefinitions=[hostile], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", taskRoleArn=latest["taskRoleArn"], executionRoleArn=latest["executionRoleArn"],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    result = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA)
    assert result.returncode == 1
    assert f"the latest ACTIVE revision of family {FAMILY}, {foreign}, which a release copies, is not one the " in (
        result.stderr
    )
    assert f"it is not tagged {JOB_TAG_KEY}={ETL.name}" in result.stderr
    assert f"Deregister it (`aws ecs deregister-task-definition --task-definition {foreign}`)" in result.stderr
    assert latest_revision(ecs, FAMILY)["taskDefinitionArn"] == foreign, "no revision registered"
    assert release_messages(fresh_emulator.client("sqs")) == []

    ecs.deregister_task_definition(taskDefinition=foreign)
    again = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA)
    assert again.returncode == 0, again.stderr
    released = latest_revision(ecs, FAMILY)
    assert released["containerDefinitions"][0].get("command") == latest["containerDefinitions"][0].get("command")


def test_a_missing_release_queue_fails_the_announcement_after_push_and_revision(fresh_emulator, tmp_path):
    sqs = fresh_emulator.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=release_queue_name(ENV))["QueueUrl"])
    result = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA)
    assert result.returncode == 1
    assert f"announce on {release_queue_name(ENV)} failed: " in result.stderr
    assert "QueueDoesNotExist" in result.stderr or "NonExistentQueue" in result.stderr, result.stderr
    assert f"Done: push {REPOSITORY}:{SHA}; register a revision of {FAMILY}. Not done: announce" in result.stderr


def _two_images(path):
    from eksflow_dev.oci_layout import write_layout

    layout = write_layout(path, {REVISION_LABEL: SHA})
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append(index["manifests"][0])
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def _image_index(path):
    from eksflow_dev.oci_layout import write_layout

    layout = write_layout(path, {REVISION_LABEL: SHA})
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["mediaType"] = "application/vnd.oci.image.index.v1+json"
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def _corrupt_layer(path):
    layout = built_image(path, SHA)
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    (layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]).write_bytes(b"tampered")
    return layout


def _not_a_layout(path):
    path.write_text("FROM scratch\n")
    return path


BAD_INPUT = {
    "unknown env": (["--env", "Dev"], "eksflow: error: --env: env 'Dev' is invalid"),
    "unknown job": (["--job", "etl"], "eksflow: error: --job: job 'etl' is unknown: use one of etl-step, serve, train"),
    "short sha": (["--git-sha", "0123abc"], "--git-sha '0123abc' is not a full commit SHA (40 lowercase hex digits)"),
    "no such image": (
        ["--image", "{tmp}/missing"],
        "--image {tmp}/missing: no such file or folder; build it as an OCI",
    ),
    "not a layout": (["--image", "{not-a-layout}"], "is neither a folder nor a tar"),
    "two images": (["--image", "{two-images}"], "holds 2 images, the release pushes exactly one; build it as an OCI"),
    "an image index": (["--image", "{index}"], "holds an image index (several platforms or attestations)"),
    "tampered layer": (["--image", "{tampered}"], "does not match its digest and size"),
    "another commit's build": (
        ["--git-sha", OTHER],
        f"its config carries the label org.opencontainers.image.revision={SHA}, not --git-sha {OTHER}; build it "
        "from that commit with --label org.opencontainers.image.revision=$GITHUB_SHA",
    ),
    "no region": (["--region", ""], "no AWS region: pass --region or set AWS_REGION"),
}


@pytest.mark.parametrize(("change", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_refused_naming_the_flag_before_any_aws_call(fresh_emulator, tmp_path, change, message):
    paths = {
        "tmp": str(tmp_path),
        "not-a-layout": str(_not_a_layout(tmp_path / "Dockerfile")),
        "two-images": str(_two_images(tmp_path / "two")),
        "index": str(_image_index(tmp_path / "index")),
        "tampered": str(_corrupt_layer(tmp_path / "tampered")),
    }
    args = {"--env": ENV, "--job": ETL.name, "--image": str(built_image(tmp_path / "image", SHA)), "--git-sha": SHA}
    args.update({flag: value.format(**paths) for flag, value in zip(change[::2], change[1::2], strict=True)})
    env = {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""} if "--region" in args else None
    control(fresh_emulator.url, "stats/reset", "")
    result = eksflow(fresh_emulator.url, "job", "release", *[item for pair in args.items() for item in pair], env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message.format(**paths) in result.stderr
    assert control(fresh_emulator.url, "stats")["calls"] == {}, "refused before any AWS call"


def test_a_role_with_exactly_the_named_actions_releases_and_one_less_is_named(tmp_path):
    """IAM enforced: PUSH_, REGISTER_ and ANNOUNCE_ACTIONS are what the command calls — what a job repository's
    release role needs. Each run releases a new commit, so every step runs in every run."""
    actions = (*PUSH_ACTIONS, *REGISTER_ACTIONS, *ANNOUNCE_ACTIONS)
    with running_emulator(tmp_path / "emulator") as enforced:  # seeded: repositories, family, queue
        bootstrap_admin(enforced.url, "admin", "eu-west-1")
        iam = enforced.client("iam")

        def user(name: str, allowed: tuple[str, ...]) -> dict[str, str]:
            iam.create_user(UserName=name)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(allowed),
                                                              "Resource": "*"}]}  # fmt: skip
            iam.put_user_policy(UserName=name, PolicyName="release", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

        users = {missing: user(f"without-{missing.replace(':', '-')}", tuple(a for a in actions if a != missing))
                 for missing in actions}  # fmt: skip
        exact = user("exact", actions)
        set_iam_enforcement(enforced.url, True)
        results = {}
        for number, (missing, keys) in enumerate(users.items()):
            sha = f"{number:040x}"
            image = built_image(tmp_path / f"image-{number}", sha)
            results[missing] = release_job(enforced.url, ETL.name, image, sha, env=keys)
        allowed = release_job(enforced.url, ETL.name, built_image(tmp_path / "image", SHA), SHA, env=exact)
    assert allowed.returncode == 0, allowed.stderr
    for missing, result in results.items():
        assert result.returncode == 1, (missing, result.stdout)
        assert f"not authorized to perform: {missing}" in result.stderr, (missing, result.stderr)
        assert f"the job's release role {ETL.github_release_role_name(ENV)} needs" in result.stderr, result.stderr


def test_the_seed_released_every_job_with_the_release_commands_own_code(fresh_emulator):
    """The local stack's and `eksflow check`'s emulator: each job's image under SEED_GIT_SHA, the etl-step family's
    latest revision running it by digest, the release queue empty (nothing announced)."""
    ecr, ecs = fresh_emulator.client("ecr"), fresh_emulator.client("ecs")
    for job, image in fresh_emulator.seeded.released.items():
        repository = get_job(job).repository(ENV)
        (detail,) = ecr.describe_images(repositoryName=repository)["imageDetails"]
        assert detail["imageTags"] == [SEED_GIT_SHA]
        assert image == f"{REGISTRY}/{repository}@{detail['imageDigest']}"
    latest = latest_revision(ecs, FAMILY)
    assert fresh_emulator.seeded.task_definitions == {ETL.name: latest["taskDefinitionArn"]}
    assert container_image(latest, CONTAINER) == fresh_emulator.seeded.released[ETL.name]
    assert release_messages(fresh_emulator.client("sqs")) == []
