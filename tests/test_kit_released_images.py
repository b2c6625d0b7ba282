"""`released_image` — the image a SageMaker job's repository released, resolved at run time under the sagemaker-runner
role — against the emulator over HTTP (the seeded environment: each job's image under the git SHA SEED_GIT_SHA): the
triggering release event's image when a release triggered the run, else the newest image tagged with a git SHA
(ecr:DescribeImages), pinned by digest and logged; and the SageMaker steps refuse, once rendered, an image that is not
pinned by digest before any AWS call."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from eksflow import kit
from eksflow.connections import local_connections
from eksflow.jobs import get_job
from eksflow.released import newest_released_image
from eksflow.releases import Release
from eksflow_dev.emulator.control import control
from eksflow_dev.emulator.seed import SEED_GIT_SHA
from tests.support.ecr import REVISION_LABEL, push_image
from tests.support.releases import ENV, release_event, triggered_by

TRAIN = get_job("train")
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
REPOSITORY = TRAIN.repository(ENV)
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def sagemaker_conn(monkeypatch, fresh_emulator):
    for key, value in local_connections(fresh_emulator.url, "eu-west-1").items():
        monkeypatch.setenv(key, value)
    return fresh_emulator


def context(**extra):
    return {"ti": SimpleNamespace(dag_id="ml_pipeline", run_id="manual__1", task_id="train_image"), **extra}


def resolve(job: str = TRAIN.name, **extra) -> str:
    return kit.released_image(task_id="train_image", job=job).execute(context(**extra))


def test_the_newest_git_sha_tagged_image_is_the_released_one_by_digest_and_logged(sagemaker_conn, capsys):
    ecr = sagemaker_conn.client("ecr")
    push_image(ecr, "nightly", {REVISION_LABEL: SHA}, repository=REPOSITORY)  # not a release: no git-SHA tag
    image = resolve()
    assert image == sagemaker_conn.seeded.released[TRAIN.name]
    assert image.startswith(f"{REGISTRY}/{REPOSITORY}@sha256:")
    log = capsys.readouterr().out  # the task log (Airflow's structlog writes to stdout here)
    assert f"Released image of job train: {image} (newest git-SHA tag {SEED_GIT_SHA} of {REPOSITORY}" in log


def test_the_triggering_release_events_image_wins_once_its_repository_holds_the_digest(sagemaker_conn):
    ecr = sagemaker_conn.client("ecr")
    released = sagemaker_conn.seeded.released[TRAIN.name]
    push_image(ecr, "f" * 40, {REVISION_LABEL: "f" * 40}, repository=REPOSITORY)  # newer in ECR, not this run's
    event = release_event(Release(ENV, TRAIN.name, released, SHA, SHA), asset_uri=TRAIN.release_asset_uri(ENV))
    assert resolve(**triggered_by(event)) == released


def test_a_triggering_release_of_a_digest_its_repository_does_not_hold_fails_for_good_naming_both(sagemaker_conn):
    from airflow.providers.common.compat.sdk import AirflowFailException

    forged = f"{REGISTRY}/{REPOSITORY}@sha256:{'e' * 64}"
    event = release_event(Release(ENV, TRAIN.name, forged, SHA, SHA), asset_uri=TRAIN.release_asset_uri(ENV))
    with pytest.raises(AirflowFailException, match=f"names image {forged}, but ECR repository {REPOSITORY} holds no"):
        resolve(**triggered_by(event))


def test_a_triggering_release_of_another_registry_fails_for_good_naming_the_image_field(sagemaker_conn):
    from airflow.providers.common.compat.sdk import AirflowFailException

    foreign = f"registry.attacker.example/{REPOSITORY}@sha256:{'e' * 64}"
    event = release_event(Release(ENV, TRAIN.name, foreign, SHA, SHA), asset_uri=TRAIN.release_asset_uri(ENV))
    with pytest.raises(AirflowFailException, match=r"field 'image' is in registry 'registry\.attacker\.example'"):
        resolve(**triggered_by(event))


def test_a_triggering_event_that_is_no_release_of_the_job_fails_for_good_naming_why(sagemaker_conn):
    from airflow.providers.common.compat.sdk import AirflowFailException

    serve = Release(ENV, "serve", f"{REGISTRY}/{get_job('serve').repository(ENV)}@sha256:{'e' * 64}", SHA, SHA)
    event = release_event(serve, asset_uri=TRAIN.release_asset_uri(ENV))  # serve's release on train's Asset
    with pytest.raises(AirflowFailException, match="is no release: release message field 'job' is 'serve', but this "
                       "is job 'train'"):  # fmt: skip
        resolve(**triggered_by(event))


def test_a_repository_without_a_released_image_fails_naming_it_and_the_fix(sagemaker_conn):
    ecr = sagemaker_conn.client("ecr")
    ecr.batch_delete_image(repositoryName=REPOSITORY, imageIds=[{"imageTag": SEED_GIT_SHA}])
    push_image(ecr, "latest", {REVISION_LABEL: SHA}, repository=REPOSITORY)
    with pytest.raises(LookupError, match=f"no released image of job 'train' in ECR repository {REPOSITORY}"):
        resolve()


class _Pages:
    """describe_images as ECR pages it. A stand-in, because the emulator (moto) records push times in whole
    seconds and cannot be told when an image was pushed: the ordering needs times the test chooses."""

    def __init__(self, pages):
        self.pages = pages

    def get_paginator(self, name):
        assert name == "describe_images"
        return SimpleNamespace(paginate=lambda **kwargs: self.pages)


def _detail(digest_char: str, tags: list[str], hours_ago: int) -> dict:
    pushed = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC) - dt.timedelta(hours=hours_ago)
    return {"registryId": "123456789012", "imageDigest": f"sha256:{digest_char * 64}", "imageTags": tags,
            "imagePushedAt": pushed}  # fmt: skip


def test_the_newest_push_wins_across_pages_and_other_tags_are_no_releases():
    pages = [
        {"imageDetails": [_detail("1", ["a" * 40], hours_ago=5), _detail("2", ["nightly"], hours_ago=0)]},
        {"imageDetails": [_detail("3", ["b" * 40, "v1.2.0"], hours_ago=1), _detail("4", [], hours_ago=0)]},
    ]
    found = newest_released_image(_Pages(pages), job="train", env="dev", region="eu-west-1")
    assert found.image == f"{REGISTRY}/eksflow-dev-train@sha256:{'3' * 64}"
    assert found.source.startswith(f"newest git-SHA tag {'b' * 40} of eksflow-dev-train, pushed 2026-11-30 11:00")


def test_a_rendered_training_image_that_is_not_pinned_fails_before_any_aws_call(sagemaker_conn):
    training = kit.sagemaker_training(
        task_id="train", job_base_name="churn-train", image="{{ ti.xcom_pull('train_image') }}",
        execution_role_arn="arn:aws:iam::123456789012:role/eksflow-local-sagemaker-execution",
        input_s3_uri="s3://eksflow-local-data/curated/", output_s3_uri="s3://eksflow-local-ml-artifacts/models/",
    )  # fmt: skip
    training.config["AlgorithmSpecification"]["TrainingImage"] = f"{REGISTRY}/{REPOSITORY}:latest"  # as rendered
    control(sagemaker_conn.url, "stats/reset", "")
    with pytest.raises(AirflowException, match=r"sagemaker_training\(\): argument 'image' names the image by its tag"):
        training.execute(context())
    assert control(sagemaker_conn.url, "stats")["calls"] == {}


def test_the_ml_pipeline_trains_and_serves_the_images_its_tasks_resolve():
    """Wiring: the released images reach the SageMaker steps through XCom (the e2e run proves the digests)."""
    import runpy
    from pathlib import Path

    dag = runpy.run_path(str(Path(__file__).resolve().parents[1] / "dags" / "ml_pipeline.py"))["dag"]
    train, register = dag.get_task("train"), dag.get_task("register_model")
    assert {"train_image"} <= train.upstream_task_ids and {"serve_image"} <= register.upstream_task_ids
    assert train.config["AlgorithmSpecification"]["TrainingImage"].operator.task_id == "train_image"
    assert register.image.operator.task_id == "serve_image"
