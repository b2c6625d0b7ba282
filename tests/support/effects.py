"""What the reference pipelines leave in AWS, read from the emulator with an operator's client (`client(service)`)
— the same expectations for a run with `airflow dags test` and a run through the chart on the local cluster."""

from __future__ import annotations

import json
from collections.abc import Callable

from eksflow.platform import bucket_names, endpoint_tags, name_prefix
from eksflow_dev.cluster.platform_values import ENV
from eksflow_dev.emulator.seed import other_env

DATA_BUCKET = bucket_names(ENV)["data"]
ML_ENDPOINT = "eksflow-local-churn"
HOUSEKEEPING_ACTED = {  # seeded instance (Name tag) -> state after housekeeping with both dry runs off
    "managed-idle": "stopped",
    "managed-busy": "running",
    "managed-expired": "terminated",
    "managed-no-metrics": "running",
    "managed-protected": "running",  # idle and expired, but protected
    "other-env-idle": "running",  # idle and expired, but another environment's
    "unmanaged-idle": "running",
    "unmanaged-expired": "running",
}
# Seeded endpoints housekeeping deletes with its dry run off; the other environment's idle one is not among them.
HOUSEKEEPING_DELETED = {f"{name_prefix(ENV)}-idle"}
OTHER_ENV_ENDPOINT = f"{name_prefix(other_env(ENV))}-idle"
Client = Callable[[str], object]


def instance_states(client: Client, seeded) -> dict[str, str]:
    by_id = {}
    for reservation in client("ec2").describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            by_id[instance["InstanceId"]] = instance["State"]["Name"]
    return {name: by_id[iid] for name, iid in seeded.instances.items()}


def endpoint_names(client: Client) -> set[str]:
    return {e["EndpointName"] for e in client("sagemaker").list_endpoints()["Endpoints"]}


def curated_keys(client: Client) -> set[str]:
    listed = client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix="curated/")
    return {o["Key"] for o in listed.get("Contents", [])}


def partition_markers(day: str, partitions: int) -> set[str]:
    return {f"curated/day={day}/part={i:04d}/_SUCCESS" for i in range(partitions)} | {"curated/_SUCCESS"}


def assert_endpoint_deployed(client: Client) -> None:
    sagemaker = client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ML_ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"].startswith(f"{ML_ENDPOINT}-config-")  # the env's prefix once
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    # The ML pipeline's endpoint is this environment's and protected: housekeeping here and elsewhere leaves it alone.
    assert (
        tags
        == endpoint_tags(ENV, managed=True, protected=True)
        == {"eksflow:managed": ENV, "eksflow:protected": "true"}
    )


def housekeeping_report(client: Client) -> dict:
    s3 = client("s3")
    reports = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="reports/housekeeping/")
    (report_key,) = [o["Key"] for o in reports["Contents"]]
    return json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=report_key)["Body"].read())


def expected_housekeeping_actions(seeded) -> dict[str, list[str]]:
    return {
        "stopped": [seeded.instances["managed-idle"]],
        "terminated": [seeded.instances["managed-expired"]],
        "deleted_endpoints": sorted(HOUSEKEEPING_DELETED),
    }
