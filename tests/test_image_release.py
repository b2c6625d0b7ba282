"""`eksflow image verify|retag` — what the image workflow runs — against the emulator's ECR over HTTP: an image is
trusted by the revision label in the config its manifest names (each link checked by hash), never by its tag; a
`:<sha>` squatted by another build fails loudly; a release tag goes on the very manifest `:<sha>` names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from eksflow.platform import ecr_repository_name
from eksflow_dev.ecr_image import RETAG_ACTIONS, VERIFY_ACTIONS
from eksflow_dev.emulator.control import bootstrap_admin, set_iam_enforcement
from tests.conftest import running_emulator
from tests.support.ecr import OCI_MANIFEST, REVISION_LABEL, aws_env, create_repository, push_image, push_index

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"
REPO = ecr_repository_name()


def eksflow(ecr_emulator, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "eksflow.cli", *args]
    env = {**aws_env(ecr_emulator.url), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def test_an_image_built_from_the_commit_is_verified_and_its_digest_reported(ecr_emulator, ecr, tmp_path):
    digest = push_image(ecr, SHA, {REVISION_LABEL: SHA, "org.opencontainers.image.title": "eksflow"})
    outputs, summary, digest_file = tmp_path / "outputs", tmp_path / "summary.md", tmp_path / "build" / "digest"
    result = eksflow(
        ecr_emulator, "image", "verify", SHA,
        "--outputs", str(outputs), "--summary", str(summary), "--digest-file", str(digest_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"verified {REPO}:{SHA} = {digest} (revision label {SHA})\n"
    assert outputs.read_text() == f"exists=true\ndigest={digest}\n"
    assert f"| `{REPO}` | `{SHA}` | `{digest}` | `{SHA}` |" in summary.read_text()
    assert digest_file.read_text() == digest, "no newline: helm --set-file reads the file as the value"


def test_a_missing_image_is_reported_for_the_push_and_refused_otherwise(ecr_emulator, ecr, tmp_path):
    outputs = tmp_path / "outputs"
    allowed = eksflow(ecr_emulator, "image", "verify", SHA, "--allow-missing", "--outputs", str(outputs))
    assert allowed.returncode == 0, allowed.stderr
    assert outputs.read_text() == "exists=false\n"
    refused = eksflow(ecr_emulator, "image", "verify", SHA)
    assert refused.returncode == 1
    assert f"no image {REPO}:{SHA} in ECR" in refused.stderr


@pytest.mark.parametrize(
    "labels",
    [{REVISION_LABEL: OTHER}, {"org.opencontainers.image.title": "eksflow"}],
    ids=["another-commits-label", "no-label"],
)
def test_a_squatted_sha_tag_fails_loudly_even_when_the_push_may_skip(ecr_emulator, ecr, tmp_path, labels):
    """Issue 12 row 4: the old workflow skipped the push when `:<sha>` existed, whoever had pushed it."""
    digest = push_image(ecr, SHA, labels)
    outputs = tmp_path / "outputs"
    result = eksflow(ecr_emulator, "image", "verify", SHA, "--allow-missing", "--outputs", str(outputs))
    assert result.returncode == 1
    found = labels.get(REVISION_LABEL, "(none)")
    assert f"{REPO}:{SHA} ({digest}) has the revision label {REVISION_LABEL}={found}, not {SHA}" in result.stderr
    assert not outputs.exists(), "nothing for later steps to act on"


def test_oci_manifests_are_read_like_docker_ones(ecr_emulator, ecr):
    digest = push_image(ecr, SHA, {REVISION_LABEL: SHA}, media_type=OCI_MANIFEST)
    result = eksflow(ecr_emulator, "image", "verify", SHA)
    assert result.returncode == 0, result.stderr
    assert digest in result.stdout


def test_an_image_index_under_the_sha_is_refused_naming_what_the_workflow_pushes(ecr_emulator, ecr):
    image = push_image(ecr, "some-build", {REVISION_LABEL: SHA})
    push_index(ecr, SHA, image)
    result = eksflow(ecr_emulator, "image", "verify", SHA)
    assert result.returncode == 1
    assert "is an image index" in result.stderr and "no attestations" in result.stderr


def test_a_release_tag_goes_on_the_verified_manifest_once(ecr_emulator, ecr, tmp_path):
    digest = push_image(ecr, SHA, {REVISION_LABEL: SHA})
    summary = tmp_path / "summary.md"
    first = eksflow(ecr_emulator, "image", "retag", SHA, "v1.4.0", "--summary", str(summary))
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{REPO}:1.4.0 = {digest} (tagged now)\n"
    (image,) = ecr.describe_images(repositoryName=REPO)["imageDetails"]
    assert (image["imageDigest"], sorted(image["imageTags"])) == (digest, sorted([SHA, "1.4.0"]))
    again = eksflow(ecr_emulator, "image", "retag", SHA, "v1.4.0")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{REPO}:1.4.0 = {digest} (already tagged)\n"
    assert "Image released" in summary.read_text()


def test_a_release_tag_already_on_another_image_fails_naming_both(ecr_emulator, ecr):
    push_image(ecr, SHA, {REVISION_LABEL: SHA})
    other = push_image(ecr, "1.4.0", {REVISION_LABEL: OTHER})
    result = eksflow(ecr_emulator, "image", "retag", SHA, "v1.4.0")
    assert result.returncode == 1
    assert f"{REPO}:1.4.0 already names another image ({other})" in result.stderr


def test_a_squatted_sha_is_never_released(ecr_emulator, ecr):
    push_image(ecr, SHA, {REVISION_LABEL: OTHER})
    result = eksflow(ecr_emulator, "image", "retag", SHA, "v1.4.0")
    assert result.returncode == 1 and "has the revision label" in result.stderr
    assert ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "1.4.0"}])["images"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "0123abc"), "commit '0123abc' is not a full commit SHA"),
        (("retag", SHA, "1.4.0"), "--version-tag '1.4.0' is not a release tag: use v<major>.<minor>.<patch>"),
        (("retag", SHA, "v1.4"), "--version-tag 'v1.4' is not a release tag"),
        (("retag", SHA, "v1.4.0,latest"), "is not a release tag"),
    ],
    ids=["short-sha", "no-v", "two-parts", "extra-tag"],
)
def test_bad_input_is_refused_before_any_aws_call(ecr_emulator, args, message):
    result = eksflow(ecr_emulator, "image", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_retagging_a_commit_whose_image_is_not_built_yet_says_to_wait_and_re_run(ecr_emulator, ecr):
    result = eksflow(ecr_emulator, "image", "retag", SHA, "v1.4.0")
    assert result.returncode == 1
    assert f"no image {REPO}:{SHA} in ECR: wait for the image workflow's build" in result.stderr


@pytest.mark.parametrize(
    ("command", "actions"),
    [(("verify", SHA), VERIFY_ACTIONS), (("retag", SHA, "v1.4.0"), RETAG_ACTIONS)],
    ids=["verify", "retag"],
)
def test_a_role_with_exactly_the_named_actions_suffices_and_one_less_is_named(tmp_path, command, actions):
    """IAM enforced by the emulator: the actions ecr_image names are what the commands call — what the push,
    image-tag and release roles need on the repository (terraform/modules/github_oidc)."""
    with running_emulator(tmp_path / "emulator", seeded=False) as enforced:
        create_repository(enforced.client("ecr"))
        push_image(enforced.client("ecr"), SHA, {REVISION_LABEL: SHA})
        bootstrap_admin(enforced.url, "admin", "eu-west-1")  # keeps an identity that may do all (moto's rule)
        iam = enforced.client("iam")

        def user(name: str, allowed: tuple[str, ...]) -> dict[str, str]:
            iam.create_user(UserName=name)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(allowed),
                                                              "Resource": "*"}]}  # fmt: skip
            iam.put_user_policy(UserName=name, PolicyName="ecr", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

        exact = user("exact", actions)
        short = {missing: user(f"without-{missing.split(':')[1]}", tuple(a for a in actions if a != missing))
                 for missing in actions}  # fmt: skip
        set_iam_enforcement(enforced.url, True)
        denied = {missing: eksflow(enforced, "image", *command, env=keys) for missing, keys in short.items()}
        allowed = eksflow(enforced, "image", *command, env=exact)  # last: a retag is done once
    assert allowed.returncode == 0, allowed.stderr
    for missing, result in denied.items():
        assert result.returncode == 1, (missing, result.stdout)
        assert f"not authorized to perform: {missing}" in result.stderr, result.stderr
        assert "(the role of this job: terraform/modules/github_oidc)" in result.stderr
