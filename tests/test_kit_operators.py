"""The kit's operators: platform wiring, and idempotency against the emulator over HTTP.

The operator tests call ``execute`` with a minimal context (only ``ti`` with the task instance key):
that stub stands in for Airflow's runtime, which the end-to-end tests exercise for real.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.common.compat.sdk import AirflowException

from eksflow import kit
from eksflow.connections import local_connections
from eksflow.kit.defaults import BOTOCORE_CONFIG, RETRIES
from eksflow.kit.naming import SAGEMAKER_NAME_MAX, name_from_context, retry_name, stable_job_name
from eksflow.platform import MANAGED_TAG_KEY, PROTECTED_TAG_KEY, TTL_TAG_KEY, managed_tags
from eksflow.roles import ROLES, role_for_pod_template
from eksflow_dev.emulator.control import control
from eksflow_dev.emulator.sagemaker import EMULATED_FAILURE_HYPERPARAMETER

ROLE_ARN = "arn:aws:iam::123456789012:role/eksflow-local-sagemaker-execution"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
TRAIN_IMAGE = f"{REGISTRY}/eksflow-local-train@sha256:{'1' * 64}"
SERVE_IMAGE = f"{REGISTRY}/eksflow-local-serve@sha256:{'2' * 64}"
TRAINING = dict(
    task_id="t",
    job_base_name="j",
    image=TRAIN_IMAGE,
    execution_role_arn=ROLE_ARN,
    input_s3_uri="s3://b/i/",
    output_s3_uri="o",
)


def context(run_id="manual__1", task_id="train", dag_id="ml_pipeline", map_index=-1):
    return {"ti": SimpleNamespace(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)}


def pod_role(executor_config) -> tuple[str, str]:
    role = role_for_pod_template(executor_config["pod_template_file"])
    return role.name, role.service_account


def test_ecs_helper_wires_role_deferral_reattach_retries_and_the_ecs_pool():
    op = kit.ecs_run_task(task_id="t", cluster="c", task_definition="td", subnets=["subnet-1"], security_groups=["sg"])
    assert isinstance(op, EcsRunTaskOperator)
    assert (op.aws_conn_id, op.deferrable, op.reattach, op.pool) == ("aws_ecs_runner", True, True, "ecs_runtask")
    assert op.retries == RETRIES and op.retry_exponential_backoff == 2.0
    assert op.botocore_config == BOTOCORE_CONFIG
    assert op.executor_config == {"pod_template_file": "/opt/airflow/pod_templates/ecs-runner.yaml"}
    assert pod_role(op.executor_config) == ("ecs-runner", "eksflow-task-ecs-runner")
    assert op.network_configuration["awsvpcConfiguration"] == {
        "subnets": ["subnet-1"],
        "securityGroups": ["sg"],
        "assignPublicIp": "DISABLED",
    }


def test_ecs_overrides_shape():
    assert kit.ecs_overrides("etl", command=["run"], environment={"B": 2, "A": "x"}, cpu=256, memory=512) == {
        "containerOverrides": [
            {
                "name": "etl",
                "command": ["run"],
                "environment": [{"name": "A", "value": "x"}, {"name": "B", "value": "2"}],
                "cpu": 256,
                "memory": 512,
            }
        ]
    }


@pytest.mark.parametrize(
    ("op", "role"),
    [
        (
            lambda: kit.sagemaker_training(**TRAINING),
            "sagemaker-runner",
        ),
        (lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x"), "sagemaker-runner"),
        (lambda: kit.find_managed_instances(task_id="f"), "ec2-ops"),
        (lambda: kit.delete_idle_endpoints(task_id="d", endpoint_names=[]), "ec2-ops"),
    ],
)
def test_aws_helpers_run_under_their_role(op, role):
    operator = op()
    assert operator.aws_conn_id == ROLES[role].conn_id
    assert pod_role(operator.executor_config) == (role, ROLES[role].service_account)


def test_waiting_sagemaker_helpers_defer():
    train = kit.sagemaker_training(**TRAINING)
    deploy = kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x")
    assert train.deferrable and deploy.deferrable
    assert train.check_if_job_exists is False  # the kit's own look-up replaces the provider's renaming


def test_deferral_can_be_switched_off_for_the_whole_platform(monkeypatch):
    """EKSFLOW_DEFERRABLE=off (e.g. during a triggerer outage, or to measure what deferral saves)."""
    monkeypatch.setenv("EKSFLOW_DEFERRABLE", "off")
    train = kit.sagemaker_training(**TRAINING)
    ecs = kit.ecs_run_task(task_id="e", cluster="c", task_definition="td", subnets=["subnet-1"])
    assert not train.deferrable and not ecs.deferrable
    monkeypatch.setenv("EKSFLOW_DEFERRABLE", "maybe")
    with pytest.raises(ValueError, match="EKSFLOW_DEFERRABLE='maybe' is invalid: use 'on' or 'off'"):
        kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x")


def test_default_args_bind_the_default_role():
    args = kit.default_args(owner="data-eng")
    assert args["owner"] == "data-eng" and args["retries"] >= 2
    assert pod_role(args["executor_config"]) == ("default", "eksflow-task-default")
    assert "aws_conn_id" not in args


def test_the_dags_default_args_set_the_retry_policy_of_every_kit_task_that_does_not_set_its_own():
    from datetime import datetime, timedelta

    from airflow.sdk import DAG

    delay = timedelta(seconds=5)
    with DAG(
        "d",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        default_args=kit.default_args(owner="data-eng", retries=0, retry_delay=delay, email=["team@example.com"]),
    ):
        ecs = kit.ecs_run_task(task_id="e", cluster="c", task_definition="td", subnets=["subnet-1"])
        train = kit.sagemaker_training(**TRAINING)
        own = kit.ecs_run_task(task_id="o", cluster="c", task_definition="td", subnets=["subnet-1"], retries=5)

        @kit.role_task("ec2-ops")
        def report():
            pass

        decorated = report()
    for op in (ecs, train, decorated.operator):
        assert (op.owner, op.retries, op.retry_delay, op.email) == ("data-eng", 0, delay, ["team@example.com"])
    assert own.retries == 5
    with DAG("plain", schedule=None, start_date=datetime(2026, 1, 1)):
        platform = kit.ecs_run_task(task_id="e", cluster="c", task_definition="td", subnets=["subnet-1"])
    assert platform.retries == RETRIES


LONGEST_ENV = "e" * 16  # validate_env's maximum


@pytest.mark.parametrize("env", ["dev", "prod", LONGEST_ENV])
def test_stable_names_are_deterministic_valid_and_distinct(env):
    """Every name starts with the environment's prefix eksflow-<env>- (IAM scopes each environment's roles to it),
    fits SageMaker's 63 characters with the longest environment name, and keeps its whole hash in every retry
    generation, so two task instances never share a name."""
    key = {"dag_id": "d", "run_id": "r1", "task_id": "t"}
    a = stable_job_name("churn-train", env=env, **key)
    assert a == stable_job_name("churn-train", env=env, **key)
    assert a != stable_job_name("churn-train", env=env, **{**key, "run_id": "r2"})
    assert a != stable_job_name("churn-train", env=env, **key, map_index=0)
    assert a.removeprefix(f"eksflow-{env}-") == stable_job_name("churn-train", env="other", **key).removeprefix(
        "eksflow-other-"
    )
    long = stable_job_name("x" * 200 + "_Weird Name!", env=env, dag_id="d", run_id="r", task_id="t")
    other_long = stable_job_name("x" * 200 + "_Weird Name!", env=env, dag_id="d", run_id="r", task_id="u")
    for name in (a, long, *(retry_name(long, generation) for generation in range(1, 11))):
        assert len(name) <= SAGEMAKER_NAME_MAX, name
        assert name.startswith(f"eksflow-{env}-"), name
        assert all(c.isalnum() or c == "-" for c in name) and "--" not in name, name
    retries = {retry_name(name, generation) for name in (long, other_long) for generation in range(1, 11)}
    assert len(retries) == 20
    assert len(long) == SAGEMAKER_NAME_MAX - len("-g10")  # room for every generation's suffix


def test_a_base_that_already_carries_the_envs_prefix_is_not_prefixed_twice():
    key = {"dag_id": "d", "run_id": "r1", "task_id": "t"}
    assert stable_job_name("eksflow-dev-churn-model", env="dev", **key) == stable_job_name(
        "churn-model", env="dev", **key
    )
    assert stable_job_name("eksflow-prod-churn", env="dev", **key).startswith("eksflow-dev-eksflow-prod-churn-")


def test_deployment_names_carry_the_envs_prefix_once():
    ti = SimpleNamespace(dag_id="ml_pipeline", run_id="r1", task_id="register_model")
    from eksflow.kit.sagemaker import deployment_names

    names = deployment_names("eksflow-dev-churn", {"ti": ti}, env="dev")
    assert names["model"].startswith("eksflow-dev-churn-model-")
    assert names["endpoint_config"].startswith("eksflow-dev-churn-config-")
    assert all(len(name) <= SAGEMAKER_NAME_MAX for name in names.values())


def test_sagemaker_steps_name_resources_for_the_deployments_env_unless_told(monkeypatch):
    monkeypatch.setenv("EKSFLOW_ENV", "dev")
    assert kit.sagemaker_training(**TRAINING).env == "dev"
    assert kit.sagemaker_training(**TRAINING, env="prod").env == "prod"
    register = dict(image=SERVE_IMAGE, model_data="s3://m/model.tar.gz", execution_role_arn=ROLE_ARN)
    assert kit.sagemaker_register_model(task_id="r", endpoint_name="eksflow-dev-churn", **register).env == "dev"
    assert kit.sagemaker_smoke_check(task_id="s", endpoint_name="eksflow-dev-churn", payload="1").env == "dev"


@pytest.fixture()
def sagemaker_conn(monkeypatch, fresh_emulator):
    for key, value in local_connections(fresh_emulator.url, "eu-west-1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fresh_emulator.client("s3").put_object(Bucket="eksflow-local-data", Key="curated/x", Body=b"1")
    return fresh_emulator


def training(**hyperparameters):
    return kit.sagemaker_training(
        task_id="train",
        job_base_name="churn-train",
        image=TRAIN_IMAGE,
        execution_role_arn=ROLE_ARN,
        input_s3_uri="s3://eksflow-local-data/curated/",
        output_s3_uri="s3://eksflow-local-ml-artifacts/models/",
        hyperparameters=hyperparameters,
        deferrable=False,
        check_interval=1,
    )


def job_names(emulator) -> list[str]:
    return sorted(
        j["TrainingJobName"] for j in emulator.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    )


def test_training_retry_reuses_the_job_of_the_earlier_try(sagemaker_conn):
    first = training().execute(context())
    assert first["Training"]["TrainingJobName"].startswith("eksflow-local-churn-train-")
    second = training().execute(context())  # a retry of the same task instance
    assert job_names(sagemaker_conn) == [first["Training"]["TrainingJobName"]]
    assert second["Training"]["TrainingJobName"] == first["Training"]["TrainingJobName"]
    training().execute(context(run_id="manual__2"))  # another DAG run trains anew
    assert len(job_names(sagemaker_conn)) == 2


def test_a_deferred_training_wait_lasts_as_long_as_the_job_may_run(sagemaker_conn, monkeypatch):
    """The trigger polls until the job's own time budget is spent (the provider's default of 60 polls gave up after
    30 minutes at the platform's 30 s interval: a 4-hour training would fail while SageMaker still trained)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    monkeypatch.setenv("EKSFLOW_DEFERRABLE", "on")
    operator = training()
    operator = kit.sagemaker_training(
        task_id="train", job_base_name="churn-train", image=operator.config["AlgorithmSpecification"]["TrainingImage"],
        execution_role_arn=ROLE_ARN, input_s3_uri="s3://eksflow-local-data/curated/",
        output_s3_uri="s3://eksflow-local-ml-artifacts/models/", max_runtime_seconds=4 * 3600, check_interval=30,
    )  # fmt: skip
    control(sagemaker_conn.url, "job-seconds", "3")  # still InProgress when the task defers
    try:
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context())
    finally:
        control(sagemaker_conn.url, "job-seconds", "0")
    trigger = deferred.value.trigger
    assert trigger.waiter_delay * trigger.attempts >= operator.max_ingestion_time >= 4 * 3600


def test_a_retry_waiting_for_the_earlier_trys_running_job_reads_its_status_only(sagemaker_conn):
    """The runner roles have no logs:* (terraform/modules/irsa): re-attached, the wait must not tail the job's
    CloudWatch logs — under IAM (the fault suite on the local cluster) the retry failed with AccessDenied."""
    operator = training()
    name = name_from_context("churn-train", context(), env="local")
    control(sagemaker_conn.url, "job-seconds", "3")  # still InProgress when the retry re-attaches
    try:
        sagemaker_conn.client("sagemaker").create_training_job(**{**operator.config, "TrainingJobName": name})
        control(sagemaker_conn.url, "stats/reset", "")
        result = operator.execute(context())
    finally:
        control(sagemaker_conn.url, "job-seconds", "0")
    assert result["Training"]["TrainingJobName"] == name
    calls = control(sagemaker_conn.url, "stats")["calls"]
    assert [call for call in calls if call.startswith("logs:")] == [], calls
    assert calls.get("sagemaker:DescribeTrainingJob", 0) >= 2, calls


def test_training_after_a_failed_job_starts_the_next_generation_with_the_reason_logged(sagemaker_conn):
    with pytest.raises(AirflowException, match="out of memory"):
        training(**{EMULATED_FAILURE_HYPERPARAMETER: "out of memory"}).execute(context())
    (failed,) = job_names(sagemaker_conn)
    result = training().execute(context())
    assert result["Training"]["TrainingJobName"] == f"{failed}-g2"
    assert job_names(sagemaker_conn) == [failed, f"{failed}-g2"]


def test_model_and_endpoint_steps_are_idempotent_and_update_blue_green(sagemaker_conn):
    sagemaker = sagemaker_conn.client("sagemaker")

    def register(run_id):
        return kit.sagemaker_register_model(
            task_id="register_model",
            endpoint_name="eksflow-local-churn",
            image=SERVE_IMAGE,
            model_data="s3://eksflow-local-ml-artifacts/models/model.tar.gz",
            execution_role_arn=ROLE_ARN,
        ).execute(context(run_id=run_id, task_id="register_model"))

    def deploy(run_id):
        return kit.sagemaker_deploy_endpoint(
            task_id="deploy_endpoint", endpoint_name="eksflow-local-churn", deferrable=False, check_interval=1
        ).execute(context(run_id=run_id, task_id="deploy_endpoint"))

    names = register("run-1")
    assert register("run-1") == names  # retry: nothing created twice
    first = deploy("run-1")
    assert first["EndpointConfig"] == names["endpoint_config"]
    assert deploy("run-1") == first  # retry: re-attached, no update
    names_2 = register("run-2")
    second = deploy("run-2")
    assert second["EndpointConfig"] == names_2["endpoint_config"] != names["endpoint_config"]
    endpoint = sagemaker.describe_endpoint(EndpointName="eksflow-local-churn")
    assert endpoint["EndpointConfigName"] == names_2["endpoint_config"]
    models = [m["ModelName"] for m in sagemaker.list_models()["Models"] if "churn" in m["ModelName"]]
    assert sorted(models) == sorted([names["model"], names_2["model"]])
    for name in (*names.values(), *names_2.values()):
        assert name.startswith("eksflow-local-churn-"), name


def test_blue_green_policy_shape():
    policy = kit.sagemaker.blue_green_deployment(bake_seconds=120, alarms=("eksflow-5xx",))
    assert policy["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 120
    assert policy["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "eksflow-5xx"}]}


def test_kit_exports_resolve_lazily():
    import eksflow.kit as kit_module

    assert kit_module.__all__ == sorted(kit_module._EXPORTS)
    for name in kit_module.__all__:
        assert callable(getattr(kit_module, name)), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kit_module.nope


def test_housekeeping_actions_recheck_tags_right_before_acting(sagemaker_conn):
    ids = sagemaker_conn.seeded.instances
    ec2 = sagemaker_conn.client("ec2")
    # Discovery said both are idle; one lost its managed tag since. Only the managed one may stop.
    stop = kit.stop_managed_instances(task_id="stop", instance_ids=[ids["managed-idle"], ids["unmanaged-idle"]])
    assert stop.execute(context(task_id="stop")) == [ids["managed-idle"]]
    ec2.delete_tags(Resources=[ids["managed-busy"]], Tags=[{"Key": "eksflow:managed"}])
    terminate = kit.terminate_managed_instances(
        task_id="terminate", instance_ids=[ids["managed-busy"], ids["managed-expired"]], dry_run="False"
    )
    assert terminate.execute(context(task_id="terminate")) == [ids["managed-expired"]]
    states = {
        i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert states[ids["unmanaged-idle"]] == "running" and states[ids["managed-busy"]] == "running"


def _instances(emulator, tags_by_name: dict[str, dict[str, str]]) -> dict[str, str]:
    """Running instances with these tags (and an expiry in the past), by name."""
    ec2 = emulator.client("ec2")
    subnet = emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = {}
    for name, tags in tags_by_name.items():
        tag_list = [
            {"Key": k, "Value": v} for k, v in {"Name": name, TTL_TAG_KEY: "2020-01-01T00:00:00Z", **tags}.items()
        ]
        ids[name] = ec2.run_instances(
            ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
        )["Instances"][0]["InstanceId"]  # fmt: skip
    return ids


def test_housekeeping_acts_only_on_what_its_own_env_manages_and_nothing_protected(sagemaker_conn):
    """Row 7: the managed tag names the environment (dev's housekeeping never stops prod's instances in a shared
    account, nor anything carrying the marker every environment used to share), and protected instances are never
    stopped or terminated — as for endpoints."""
    ids = _instances(
        sagemaker_conn,
        {
            "mine": managed_tags("local"),
            "other-env": managed_tags("prod"),
            "shared-marker": {MANAGED_TAG_KEY: "true"},
            "mine-protected": {**managed_tags("local"), PROTECTED_TAG_KEY: "True"},
        },
    )
    everything = list(ids.values())
    stop = kit.stop_managed_instances(task_id="stop", instance_ids=everything)
    assert stop.execute(context(task_id="stop")) == [ids["mine"]]
    sagemaker_conn.client("ec2").start_instances(InstanceIds=[ids["mine"]])
    terminate = kit.terminate_managed_instances(task_id="terminate", instance_ids=everything, dry_run=False)
    assert terminate.execute(context(task_id="terminate")) == [ids["mine"]]

    sagemaker = sagemaker_conn.client("sagemaker")
    quiet = {  # idle endpoints: another environment's name, or this environment's name and another's tag
        "eksflow-prod-quiet": managed_tags("prod"),
        "eksflow-local-quiet-prod": managed_tags("prod"),
        "eksflow-local-quiet-shared": {MANAGED_TAG_KEY: "true"},
    }
    for name, tags in quiet.items():
        sagemaker.create_endpoint(
            EndpointName=name, EndpointConfigName="eksflow-local-seed-config",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )  # fmt: skip
    find = kit.find_idle_endpoints(task_id="find")
    ti = SimpleNamespace(xcoms={}, xcom_push=lambda key, value: ti.xcoms.__setitem__(key, value))
    report = {e["endpoint"]: e["verdict"] for e in find.execute({"ti": ti})}
    assert report["eksflow-local-quiet-prod"] == report["eksflow-local-quiet-shared"] == "other-env"
    # Another environment's names are not even looked at: IAM lets this environment's role read only its own.
    assert all(name.startswith("eksflow-local-") for name in report), report
    delete = kit.delete_idle_endpoints(task_id="delete", endpoint_names=list(quiet), dry_run=False)
    control(sagemaker_conn.url, "stats/reset", "")
    assert delete.execute(context(task_id="delete")) == []
    calls = control(sagemaker_conn.url, "stats")["calls"]
    assert calls.get("sagemaker:DescribeEndpoint") == 2, calls  # the two of this environment's names only


def test_housekeeping_and_endpoint_tags_name_the_deployments_env_unless_told(monkeypatch):
    monkeypatch.setenv("EKSFLOW_ENV", "dev")
    assert kit.find_managed_instances(task_id="f").env == "dev"
    assert kit.delete_idle_endpoints(task_id="d", endpoint_names=[], env="prod").env == "prod"
    deploy = kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-dev-x", managed=True, protected=True)
    assert deploy.endpoint_tags == {MANAGED_TAG_KEY: "dev", PROTECTED_TAG_KEY: "true"}
    assert kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-dev-x").endpoint_tags == {}


def test_housekeeping_dry_runs_change_nothing_and_protected_endpoints_survive(sagemaker_conn):
    sagemaker = sagemaker_conn.client("sagemaker")
    arn = sagemaker.describe_endpoint(EndpointName="eksflow-local-in-use")["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "eksflow:protected", "Value": "true"}])
    names = ["eksflow-local-idle", "eksflow-local-in-use", "eksflow-local-unmanaged"]
    dry = kit.delete_idle_endpoints(task_id="delete", endpoint_names=names)  # dry run by default
    assert dry.execute(context(task_id="delete")) == []
    real = kit.delete_idle_endpoints(task_id="delete", endpoint_names=names, dry_run=False)
    assert real.execute(context(task_id="delete")) == ["eksflow-local-idle"]
    left = {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    assert left == {"eksflow-local-in-use", "eksflow-local-unmanaged", "eksflow-prod-idle"}  # prod's: seeded


def test_a_dry_run_switch_that_renders_to_no_boolean_fails_the_task_and_acts_on_nothing(sagemaker_conn):
    ids = sagemaker_conn.seeded.instances
    terminate = kit.terminate_managed_instances(
        task_id="terminate", instance_ids=[ids["managed-expired"]], dry_run="{{ params.dry_run }}"
    )
    terminate.dry_run = "ture"  # what a typo in a template or a DAG param renders to
    with pytest.raises(AirflowException, match=r"dry_run rendered to 'ture': expected True or False"):
        terminate.execute(context(task_id="terminate"))
    ec2 = sagemaker_conn.client("ec2")
    (reservation,) = ec2.describe_instances(InstanceIds=[ids["managed-expired"]])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] != "terminated"


def _endpoint(sagemaker_conn, name: str, variant: str, hourly_invocations: float | None) -> None:
    import datetime as dt

    sagemaker = sagemaker_conn.client("sagemaker")
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {"VariantName": variant, "ModelName": "eksflow-local-seed-model", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(
        EndpointName=name,
        EndpointConfigName=f"{name}-config",
        Tags=[{"Key": k, "Value": v} for k, v in managed_tags("local").items()],
    )
    if hourly_invocations is not None:
        now = dt.datetime.now(dt.UTC)
        sagemaker_conn.client("cloudwatch").put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}],
                    "Timestamp": now - dt.timedelta(hours=hour, minutes=5),
                    "Value": hourly_invocations,
                }
                for hour in range(3)
            ],
        )


def test_endpoint_activity_is_read_for_its_real_variants_and_no_data_is_never_idle(sagemaker_conn):
    _endpoint(sagemaker_conn, "eksflow-local-busy-alltraffic", "AllTraffic", 500)
    _endpoint(sagemaker_conn, "eksflow-local-quiet-alltraffic", "AllTraffic", 0)
    _endpoint(sagemaker_conn, "eksflow-local-no-metrics", "AllTraffic", None)
    find = kit.find_idle_endpoints(task_id="find")
    ti = SimpleNamespace(xcoms={}, xcom_push=lambda key, value: ti.xcoms.__setitem__(key, value))
    report = {e["endpoint"]: e["verdict"] for e in find.execute({"ti": ti})}
    assert report["eksflow-local-busy-alltraffic"] == "in-use"
    assert report["eksflow-local-quiet-alltraffic"] == "idle"
    assert report["eksflow-local-no-metrics"] == "no-metrics"
    assert ti.xcoms["idle"] == ["eksflow-local-idle", "eksflow-local-quiet-alltraffic"]


def test_ecs_retry_reattaches_to_the_running_task_instead_of_starting_another(tmp_path, monkeypatch):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from eksflow_dev.local.emulator import running_emulator

    with running_emulator(tmp_path, {"EKSFLOW_EMULATOR_JOB_SECONDS": "120"}) as emulator:
        for key, value in local_connections(emulator.url, "eu-west-1").items():
            monkeypatch.setenv(key, value)

        def try_once():
            op = kit.ecs_run_task(
                task_id="transform",
                cluster="eksflow-local-batch",
                task_definition="eksflow-local-etl-step",
                overrides=kit.ecs_overrides("etl", command=["run"]),
                subnets=[emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]],
            )
            ctx = context(task_id="transform", dag_id="batch_data_pipeline")
            ctx["ti"].xcom_push = lambda **_: None
            with pytest.raises(TaskDeferred) as deferred:  # the worker pod would exit here
                op.execute(ctx)
            return deferred.value.trigger.task_arn

        first = try_once()
        second = try_once()  # the worker pod was lost; Airflow retries the same task instance
        assert second == first
        tasks = emulator.client("ecs").list_tasks(cluster="eksflow-local-batch")["taskArns"]
        assert tasks == [first]
