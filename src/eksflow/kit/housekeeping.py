"""Housekeeping steps under the ``ec2-ops`` role: find idle or expired managed EC2 instances and idle
SageMaker endpoints, then stop/terminate/delete them.

Safety rules, enforced here *and* by IAM (tag conditions in the role's policy, terraform/modules/irsa):
- only resources whose ``eksflow:managed`` tag names this environment (``eksflow:managed=dev``; the step's ``env``,
  by default ``EKSFLOW_ENV``) are ever considered, so one environment's housekeeping never acts on what another
  manages in a shared account; every action re-reads the tags right before acting, so a resource re-tagged
  between discovery and action is left alone;
- endpoints are only looked at when named with this environment's prefix (``eksflow-dev-``): IAM lets the role read
  no other environment's;
- instances and endpoints tagged ``eksflow:protected=true`` (any case) are never stopped, terminated or deleted;
- endpoints with any invocation in the look-back window are in use and never deleted; activity is read for each
  variant the endpoint has (DescribeEndpoint), and a variant CloudWatch has no data for makes the endpoint
  unknown ("no-metrics"), never idle;
- terminate and delete default to ``dry_run=True``: they log what they would do and do nothing; the switch
  takes only booleans (a template must render to True/False), so a typo fails the task instead of acting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.ec2 import EC2TerminateInstanceOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from eksflow.kit.defaults import aws_operator_kwargs, side_client
from eksflow.kit.errors import (
    BOOLEAN_STRINGS,
    KitArgumentError,
    is_deferred_value,
    require_bool,
    require_ec2_instance_type,
    require_env,
    require_positive_int,
)
from eksflow.platform import (
    MANAGED_TAG_KEY,
    TTL_TAG_KEY,
    is_protected,
    managed_tag_value,
    sagemaker_name_prefix,
)

ROLE = "ec2-ops"


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _ownership(tags: dict[str, str], env: str) -> str:
    """Whose the resource is: "mine" (managed by ``env``), "other-env" (managed by another environment, or by the
    value every environment once shared) or "unmanaged"."""
    if MANAGED_TAG_KEY not in tags:
        return "unmanaged"
    return "mine" if tags[MANAGED_TAG_KEY] == managed_tag_value(env) else "other-env"


def _may_act_on(tags: dict[str, str], env: str) -> bool:
    """What IAM lets the ec2-ops role act on, too: managed by this environment and not protected."""
    return _ownership(tags, env) == "mine" and not is_protected(tags)


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def act_on_eligible(log, *, verb: str, wanted: list[str], eligible: list[str], dry_run: Any, act) -> list[str]:
    """Act on ``eligible`` (the re-checked subset of ``wanted``), or only log it on a dry run."""
    if not wanted:
        log.info("Nothing to %s", verb)
        return []
    targets = sorted(eligible)
    skipped = sorted(set(wanted) - set(targets))
    if skipped:
        log.warning("Not going to %s %s: no longer managed, protected, or not in a state for it", verb, skipped)
    if _dry_run(dry_run):
        log.info("DRY RUN: would %s %s", verb, targets)
        return []
    if targets:
        act(targets)
        log.info("Did %s %s", verb, targets)
    return targets


class _Ec2ClientMixin:
    env: str

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "api_type": "client_type"}  # type: ignore[misc]

    def _managed_instances(self, instance_ids: Sequence[str] | None = None) -> list[dict]:
        """Instances managed by this environment (protected ones included: discovery reports them)."""
        kwargs: dict[str, Any] = {
            "Filters": [{"Name": f"tag:{MANAGED_TAG_KEY}", "Values": [managed_tag_value(self.env)]}]
        }
        if instance_ids is not None:
            kwargs["InstanceIds"] = list(instance_ids)
        found = []
        for page in self.hook.conn.get_paginator("describe_instances").paginate(**kwargs):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
        return [i for i in found if _ownership(_tags(i), self.env) == "mine"]

    def _actionable_instances(self, instance_ids: Sequence[str]) -> list[dict]:
        """The re-check right before acting: managed by this environment and not protected."""
        return [i for i in self._managed_instances(instance_ids) if _may_act_on(_tags(i), self.env)]


class FindManagedInstancesOperator(_Ec2ClientMixin, AwsBaseOperator[EC2Hook]):
    """Find this environment's managed instances that are idle (running, average CPU below threshold over the
    look-back) or expired (``eksflow:expires-at`` in the past), protected ones excepted. Pushes XComs ``idle`` and
    ``expired`` (id lists)."""

    aws_hook_class = EC2Hook
    extra_aws_services = ("cloudwatch",)
    template_fields = aws_template_fields("cpu_threshold", "lookback_hours")

    def __init__(
        self,
        *,
        cpu_threshold: float = 5.0,
        lookback_hours: int = 6,
        instance_types: Sequence[str] = (),
        env: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cpu_threshold = cpu_threshold
        self.lookback_hours = lookback_hours
        self.instance_types = list(instance_types)
        self.env = require_env("find_managed_instances", env)

    def execute(self, context):
        now = _now()
        start = now - dt.timedelta(hours=float(self.lookback_hours))
        cloudwatch = side_client(self, "cloudwatch")
        idle, expired, report = [], [], []
        for instance in self._managed_instances():
            if self.instance_types and instance["InstanceType"] not in self.instance_types:
                continue
            iid, state = instance["InstanceId"], instance["State"]["Name"]
            tags = _tags(instance)
            expiry = _parse_expiry(tags.get(TTL_TAG_KEY))
            entry: dict[str, Any] = {"instance_id": iid, "state": state}
            if is_protected(tags):
                entry["verdict"] = "protected"
            elif expiry and expiry <= now and state in {"running", "stopped", "stopping"}:
                expired.append(iid)
                entry["verdict"] = "expired"
            elif state == "running":
                points = _hourly_points(
                    cloudwatch, "AWS/EC2", "CPUUtilization", {"InstanceId": iid}, "Average", start, now
                )
                cpu = sum(points) / len(points) if points else None
                entry["avg_cpu"] = cpu
                # No datapoints means CloudWatch has nothing on it yet: treat as unknown, not idle.
                if cpu is not None and cpu < float(self.cpu_threshold):
                    idle.append(iid)
                    entry["verdict"] = "idle"
                else:
                    entry["verdict"] = "busy" if cpu is not None else "no-metrics"
            else:
                entry["verdict"] = "not-running"
            report.append(entry)
        self.log.info("Managed instances inspected: %s", report)
        ti = context["ti"]
        ti.xcom_push(key="idle", value=sorted(idle))
        ti.xcom_push(key="expired", value=sorted(expired))
        return report


class StopManagedInstancesOperator(_Ec2ClientMixin, AwsBaseOperator[EC2Hook]):
    """Stop the given instances, after re-checking each is managed by this environment, not protected and still
    running.

    (The provider's EC2StopInstanceOperator handles one instance per task; housekeeping stops a batch in
    one pod, through the same EC2Hook.)"""

    aws_hook_class = EC2Hook
    template_fields = aws_template_fields("instance_ids", "dry_run")

    def __init__(self, *, instance_ids: Any, dry_run: Any = False, env: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.instance_ids = instance_ids
        self.dry_run = dry_run
        self.env = require_env("stop_managed_instances", env)

    def execute(self, context):
        wanted = list(self.instance_ids or [])
        found = self._actionable_instances(wanted) if wanted else []
        running = [i["InstanceId"] for i in found if i["State"]["Name"] == "running"]
        return act_on_eligible(
            self.log,
            verb="stop",
            wanted=wanted,
            eligible=running,
            dry_run=self.dry_run,
            act=lambda ids: self.hook.stop_instances(instance_ids=ids),
        )


class TerminateManagedInstancesOperator(_Ec2ClientMixin, EC2TerminateInstanceOperator):
    """The provider's EC2TerminateInstanceOperator behind a re-check of the tags (managed by this environment, not
    protected) and a dry-run switch."""

    template_fields = (*EC2TerminateInstanceOperator.template_fields, "dry_run")

    def __init__(self, *, instance_ids: Any, dry_run: Any = True, env: str | None = None, **kwargs):
        super().__init__(instance_ids=instance_ids, **kwargs)
        self.dry_run = dry_run
        self.env = require_env("terminate_managed_instances", env)

    def execute(self, context):
        wanted = list(self.instance_ids or [])
        found = self._actionable_instances(wanted) if wanted else []
        alive = [i["InstanceId"] for i in found if i["State"]["Name"] != "terminated"]

        def terminate(ids: list[str]) -> None:
            self.instance_ids = ids
            super(TerminateManagedInstancesOperator, self).execute(context)

        return act_on_eligible(
            self.log,
            verb="terminate",
            wanted=wanted,
            eligible=alive,
            dry_run=self.dry_run,
            act=terminate,
        )


class FindIdleEndpointsOperator(AwsBaseOperator[SageMakerHook]):
    """Endpoints of this environment (named ``eksflow-<env>-...``) it manages, not protected, with zero invocations in
    the look-back window."""

    aws_hook_class = SageMakerHook
    extra_aws_services = ("cloudwatch",)
    template_fields = aws_template_fields("lookback_hours")

    def __init__(self, *, lookback_hours: int = 24, env: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lookback_hours = lookback_hours
        self.env = require_env("find_idle_endpoints", env)

    def execute(self, context):
        conn = self.hook.conn
        cloudwatch = side_client(self, "cloudwatch")
        now = _now()
        start = now - dt.timedelta(hours=float(self.lookback_hours))
        idle, report = [], []
        prefix = sagemaker_name_prefix(self.env)
        for page in conn.get_paginator("list_endpoints").paginate(NameContains=prefix):
            for endpoint in page["Endpoints"]:
                name = endpoint["EndpointName"]
                if not name.startswith(prefix):  # another environment's: IAM lets this role read only its own
                    continue
                tags = _tags({"Tags": conn.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]})
                entry: dict[str, Any] = {"endpoint": name, "status": endpoint["EndpointStatus"]}
                ownership = _ownership(tags, self.env)
                if ownership != "mine":
                    entry["verdict"] = ownership
                elif is_protected(tags):
                    entry["verdict"] = "protected"
                elif endpoint["EndpointStatus"] != "InService":
                    entry["verdict"] = "changing"
                else:
                    entry.update(self._activity(conn, cloudwatch, name, start, now))
                    if entry["verdict"] == "idle":
                        idle.append(name)
                report.append(entry)
        self.log.info("Endpoints inspected: %s", report)
        context["ti"].xcom_push(key="idle", value=sorted(idle))
        return report

    @staticmethod
    def _activity(conn, cloudwatch, name: str, start, end) -> dict[str, Any]:
        """Invocations summed over the endpoint's variants as it has them now (DescribeEndpoint): idle only when
        CloudWatch has datapoints for every variant and they sum to 0; a variant without data is unknown."""
        variants = [v["VariantName"] for v in conn.describe_endpoint(EndpointName=name).get("ProductionVariants", [])]
        total, unknown = 0.0, []
        for variant in variants:
            dimensions = {"EndpointName": name, "VariantName": variant}
            points = _hourly_points(cloudwatch, "AWS/SageMaker", "Invocations", dimensions, "Sum", start, end)
            if not points:
                unknown.append(variant)
            total += sum(points)
        if total > 0:
            return {"invocations": total, "verdict": "in-use"}
        if unknown or not variants:
            return {"invocations": None, "variants_without_data": unknown, "verdict": "no-metrics"}
        return {"invocations": 0.0, "verdict": "idle"}


def _hourly_points(cloudwatch, namespace, metric, dimensions, statistic, start, end) -> list[float]:
    """One CloudWatch statistic per hour of [start, end] (empty when CloudWatch has no data)."""
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=3600,
        Statistics=[statistic],
    )["Datapoints"]
    return [point[statistic] for point in datapoints]


class DeleteEndpointsOperator(AwsBaseOperator[SageMakerHook]):
    """Delete the given endpoints after re-checking their tags (managed by this environment, not protected); dry run
    by default."""

    aws_hook_class = SageMakerHook
    template_fields = aws_template_fields("endpoint_names", "dry_run")

    def __init__(self, *, endpoint_names: Any, dry_run: Any = True, env: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.endpoint_names = endpoint_names
        self.dry_run = dry_run
        self.env = require_env("delete_idle_endpoints", env)

    def execute(self, context):
        conn = self.hook.conn
        prefix = sagemaker_name_prefix(self.env)
        given = list(self.endpoint_names or [])
        wanted = [name for name in given if name.startswith(prefix)]
        if len(wanted) < len(given):
            self.log.warning("Not going to delete %s: not named %s*", sorted(set(given) - set(wanted)), prefix)
        eligible = []
        for name in wanted:
            arn = conn.describe_endpoint(EndpointName=name)["EndpointArn"]
            tags = _tags({"Tags": conn.list_tags(ResourceArn=arn)["Tags"]})
            if _may_act_on(tags, self.env):
                eligible.append(name)

        def delete(names: list[str]) -> None:
            for name in names:
                conn.delete_endpoint(EndpointName=name)

        return act_on_eligible(
            self.log, verb="delete", wanted=wanted, eligible=eligible, dry_run=self.dry_run, act=delete
        )


def _dry_run(value: Any) -> bool:
    """The rendered dry-run switch: a boolean, or exactly what Jinja renders a boolean to. Anything else (a typo
    like "ture", a number) fails the task before it acts: a switch that guards deletion must not fail open."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in BOOLEAN_STRINGS:
        return value.strip().lower() == "true"
    raise AirflowException(
        f"dry_run rendered to {value!r}: expected True or False; nothing was done. Pass a boolean or a template of "
        "a boolean Param (e.g. '{{ params.dry_run_delete }}' with Param(True, type='boolean'))"
    )


# ----------------------------------------------------------------------------------------------------
# Helpers DAG authors call.


def find_managed_instances(
    *,
    task_id: str,
    cpu_threshold: float = 5.0,
    lookback_hours: int = 6,
    instance_types: Sequence[str] = (),
    **kw,
):
    """Discovery; ``instance_types`` optionally limits it to those types (e.g. ``["g5.xlarge"]``)."""
    for index, instance_type in enumerate(instance_types):
        require_ec2_instance_type("find_managed_instances", f"instance_types[{index}]", instance_type)
    if not is_deferred_value(cpu_threshold) and (
        isinstance(cpu_threshold, bool) or not isinstance(cpu_threshold, (int, float)) or not 0 < cpu_threshold < 100
    ):
        raise KitArgumentError(
            "find_managed_instances",
            "cpu_threshold",
            f"must be a percentage between 0 and 100, got {cpu_threshold!r}",
            "e.g. 5.0",
        )
    require_positive_int("find_managed_instances", "lookback_hours", lookback_hours)
    return FindManagedInstancesOperator(
        task_id=task_id,
        cpu_threshold=cpu_threshold,
        lookback_hours=lookback_hours,
        instance_types=list(instance_types),
        **{**aws_operator_kwargs(ROLE), **kw},
    )


def stop_managed_instances(*, task_id: str, instance_ids: Any, dry_run: Any = False, **kw):
    """Stop the given instances (e.g. ``find_managed_instances``' idle ones) that this environment manages and
    nobody protects, skipping the rest (IAM refuses them anyway); ``dry_run`` only reports."""
    require_bool("stop_managed_instances", "dry_run", dry_run)
    return StopManagedInstancesOperator(
        task_id=task_id, instance_ids=instance_ids, dry_run=dry_run, **{**aws_operator_kwargs(ROLE), **kw}
    )


def terminate_managed_instances(*, task_id: str, instance_ids: Any, dry_run: Any = True, **kw):
    """Terminate the given instances (e.g. the expired ones) that this environment manages and nobody protects;
    a dry run (reporting only) unless ``dry_run=False``."""
    require_bool("terminate_managed_instances", "dry_run", dry_run)
    return TerminateManagedInstancesOperator(
        task_id=task_id, instance_ids=instance_ids, dry_run=dry_run, **{**aws_operator_kwargs(ROLE), **kw}
    )


def find_idle_endpoints(*, task_id: str, lookback_hours: int = 24, **kw):
    """This environment's managed, unprotected endpoints without invocations on any variant in ``lookback_hours``
    (no CloudWatch data counts as unknown, never as idle)."""
    require_positive_int("find_idle_endpoints", "lookback_hours", lookback_hours)
    return FindIdleEndpointsOperator(
        task_id=task_id, lookback_hours=lookback_hours, **{**aws_operator_kwargs(ROLE), **kw}
    )


def delete_idle_endpoints(*, task_id: str, endpoint_names: Any, dry_run: Any = True, **kw):
    """Delete the given endpoints (e.g. ``find_idle_endpoints``' result) that this environment manages and nobody
    protects; a dry run (reporting only) unless ``dry_run=False``."""
    require_bool("delete_idle_endpoints", "dry_run", dry_run)
    return DeleteEndpointsOperator(
        task_id=task_id, endpoint_names=endpoint_names, dry_run=dry_run, **{**aws_operator_kwargs(ROLE), **kw}
    )


def write_s3_report(*, task_id: str, bucket: str, key: str, data: Any, **kw):
    """Write a report (templated ``data``) to S3 with the provider's S3CreateObjectOperator."""
    from airflow.providers.amazon.aws.operators.s3 import S3CreateObjectOperator

    from eksflow.kit.errors import require_non_empty_str

    require_non_empty_str("write_s3_report", "bucket", bucket, "eksflow-dev-data")
    require_non_empty_str("write_s3_report", "key", key, "reports/housekeeping/{{ ds }}.json")
    return S3CreateObjectOperator(
        task_id=task_id,
        s3_bucket=bucket,
        s3_key=key,
        data=data,
        replace=True,
        **{**aws_operator_kwargs(ROLE), **kw},
    )
