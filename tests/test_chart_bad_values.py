"""Bad values fail `helm template` with a message naming the field: a table of --set cases and the
values files in tests/chart_bad_values/ (first line: `# expect: <field>`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm import helm, template_args

BAD_VALUES = sorted((Path(__file__).parent / "chart_bad_values").glob("*.yaml"))
BAD_SETS = [
    (("workers.roles.ecs-runner.iamRoleArn=not-an-arn",), "iamRoleArn"),
    (("workers.roles.admin.iamRoleArn=",), "admin"),
    (("workers.replicas=3",), "replicas"),
    (("image.tag=",), "tag"),
    (("image.digest=latest",), "digest"),
    (("image.pullPolicy=Sometimes",), "pullPolicy"),
    (("workers.tolerations[0].effect=Maybe",), "effect"),
    (("region=europe",), "region"),
    (("controlPlane.worker.iamRoleArn=",), "worker"),
    (("controlPlane.triggerer.iamRoleArn=arn:aws:iam::1:role/x",), "iamRoleArn"),
    (("airflow.parallelism=0",), "parallelism"),
    (("airflow.ecsRunTaskPool.slots=0",), "slots"),
    (("airflow.remoteLogging.bucket=s3://logs",), "bucket"),
    (("airflow.kubernetesExecutor.taskQueuedTimeoutSeconds=5",), "taskQueuedTimeoutSeconds"),
    (("airflow.secretsBackend.enabled=yes",), "enabled"),
    (("components.scheduler.replicas=0",), "replicas"),
    (("components.triggerer.resources.limits.memory=2G",), "memory"),
    (("components.apiServer.resources.limits=null",), "limits"),
    (("database.existingSecret=",), "existingSecret"),
    (("database.tls.caConfigMap=DB_CA",), "caConfigMap"),
    (("database.tls.caConfigMapKey=ca/pem",), "caConfigMapKey"),
    (("components.worker.replicas=1",), "worker"),
    (("gitSync.auth.type=ssh",), "existingSecret"),
    (("gitSync.auth.type=token",), "type"),
    (("gitSync.repo=ftp://example.com/dags",), "repo"),
    (("gitSync.period=1h",), "period"),
    (("gitSync.subPath=/abs",), "subPath"),
    (("networkPolicy.databaseCidrs[0]=10.0.0.0",), "databaseCidrs"),
]


def _fails_naming(args: list[str], field: str) -> None:
    result = helm(*args, check=False)
    assert result.returncode != 0, "rendered"
    assert field in result.stderr, result.stderr


@pytest.mark.parametrize(("sets", "field"), BAD_SETS, ids=[s[0][0] for s in BAD_SETS])
def test_bad_set_fails_naming_the_field(sets, field):
    args = template_args()
    for item in sets:  # --set-string keeps "yes" a string, so the schema sees the wrong type
        args += ["--set-string" if item.endswith("=yes") else "--set", item]
    _fails_naming(args, field)


@pytest.mark.parametrize("path", BAD_VALUES, ids=lambda p: p.stem)
def test_bad_values_file_fails_naming_the_field(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ").strip()
    _fails_naming([*template_args(), "-f", str(path)], expected)


def test_there_are_at_least_ten_bad_values_files():
    assert len(BAD_VALUES) >= 10
