"""The metadata DB connection verifies the server (issue 12 row 17: the URL said sslmode=require, which encrypts but
lets anyone on the path impersonate RDS).

Rendered: every container that connects to the DB mounts the CA bundle (database.tls.caConfigMap) where the URL's
sslrootcert says (the role model's db_ca_file), and no other container does. Executed: PostgreSQL 15 taking TLS only,
its certificate issued by a test CA for an RDS-style host name; `airflow db check` in every DB container of the
production render, run as the local node runs it (its env with the URL `make deploy` writes, its mounts with the
bundle, read-only root, uid 50000, the platform image), connects; a bundle of another CA, a host name the
certificate does not carry, and a pod without the mount are refused, each naming why."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from eksflow.platform import DB_CA_FILE
from eksflow_dev.cluster import postgres as server
from eksflow_dev.cluster.pki import serving_pair
from eksflow_dev.deploy import DB_CA_CONFIGMAP, DB_CA_KEY, DB_SECRET, db_url
from tests.helm import VALUE_FILES, pod_spec, render, rendered_templates

DB = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
# The containers that connect to the metadata DB (tests/test_chart_secrets.py says why each, from Airflow's source).
DB_CONTAINERS = {
    "api-server/api-server",
    "scheduler/scheduler",
    "dag-processor/dag-processor",
    "triggerer/triggerer",
    *(f"{c}/wait-for-migrations" for c in ("api-server", "scheduler", "dag-processor", "triggerer")),
    "migrate-db/migrate",
}
RDS_HOST = "eksflow-prod-metadata.c0ffee0c0ffe.eu-west-1.rds.amazonaws.com"
# Another instance's name: its certificate comes from the same CA, so only the name check (verify-full, not
# verify-ca) tells it apart.
OTHER_HOST = "eksflow-prod-other.c0ffee0c0ffe.eu-west-1.rds.amazonaws.com"


def _pods(docs: list[dict]) -> dict[str, dict]:
    """workload or Pod name (release prefix dropped) -> pod spec."""
    specs = [(d["metadata"]["name"], d["spec"] if d["kind"] == "Pod" else pod_spec(d)) for d in docs]
    return {name.removeprefix("eksflow-"): spec for name, spec in specs if spec}


def _containers(pods: dict[str, dict]) -> dict[str, dict]:
    return {
        f"{workload}/{c['name']}": c
        for workload, spec in pods.items()
        for c in [*spec.get("initContainers", []), *spec["containers"]]
    }


def _ca_files(spec: dict, container: dict) -> set[str]:
    """The files of the DB CA ConfigMap this container sees, as paths in the container."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    found = set()
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("configMap", {})
        if source.get("name") == DB_CA_CONFIGMAP:
            found |= {
                str(PurePosixPath(mount["mountPath"]) / i["path"]) for i in source["items"] if i["key"] == DB_CA_KEY
            }
    return found


def _connects(container: dict) -> bool:
    return any(e["name"] == DB for e in container.get("env", []))


@pytest.mark.parametrize("values", ["dev", "prod"])
def test_every_container_that_connects_to_the_db_mounts_the_ca_bundle_where_the_url_names_it(values):
    pods = _pods(render(base=VALUE_FILES[values]))
    seen = {}
    for workload, spec in pods.items():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            seen[f"{workload}/{container['name']}"] = (_connects(container), _ca_files(spec, container))
    assert {name for name, (connects, _) in seen.items() if connects} == DB_CONTAINERS
    for name, (connects, files) in seen.items():
        assert files == ({DB_CA_FILE} if connects else set()), name
    assert db_url("db:5432", "u", "p").endswith(f"?sslmode=verify-full&sslrootcert={DB_CA_FILE}")


def test_worker_pods_get_no_ca_bundle_because_they_never_connect_to_the_db():
    """Airflow 3.3.2's KubernetesExecutor runs `python -m airflow.sdk.execution_time.execute_workload` in a task pod
    (providers/cncf/kubernetes/pod_generator.py workload_to_command_args), which disposes of the ORM and supervises
    the task through the api-server's execution API (execute_workload.py execute_workload,
    executors/base_executor.py run_workload → supervisor.supervise_task); the task process blocks ORM access
    (supervisor.py block_orm_access). Nothing there opens the metadata DB, so nothing needs its CA."""
    docs = render(base=VALUE_FILES["prod"])
    for role, pod in rendered_templates(docs).items():
        assert all("configMap" not in v or v["configMap"]["name"] != DB_CA_CONFIGMAP for v in pod["spec"]["volumes"])
        assert not any(_connects(c) for c in pod["spec"]["containers"]), role


def test_without_a_ca_configmap_nothing_mounts_it():
    """The kind path's PostgreSQL has no TLS (values-kind.yaml); prod refuses the empty value
    (tests/chart_bad_values/db-tls-off-in-prod.yaml)."""
    pods = _pods(render(base=VALUE_FILES["kind"]))
    for name, container in _containers(pods).items():
        assert not _ca_files(pods[name.split("/")[0]], container), name
    assert not [v for spec in pods.values() for v in spec.get("volumes", []) if v["name"] == "db-ca"]


# ---- executed: `airflow db check` in the rendered containers against PostgreSQL with TLS ----------------------


@pytest.fixture(scope="module")
def node():
    """The local node's runtime and platform image (tests/test_local_runtime.py proves them)."""
    from eksflow_dev.cluster.node import runtime

    try:
        runtime.tools()
    except runtime.RuntimeUnavailable as exc:
        pytest.skip(f"CANNOT RUN CONTAINERS HERE: {exc}")


@pytest.fixture(scope="module")
def tls_db():
    problem = server.missing()
    if problem:
        pytest.skip(problem)
    running = server.start(tls_names=(RDS_HOST,))
    try:
        yield running
    finally:
        running.stop()


def _local_image_render(*sets: str, values: str = "prod") -> tuple[dict[str, dict], dict[str, dict]]:
    """(pods, ConfigMaps' data by name) of a render, with the local node's name for the platform image."""
    docs = render(base=VALUE_FILES[values], sets=("image.repository=eksflow", "image.tag=local", *sets))
    return _pods(docs), {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}


@pytest.fixture(scope="module")
def prod():
    return _local_image_render()


def _db_check(tmp_path, rendered, name, db, *, bundle: str, host: str = RDS_HOST) -> tuple[int, str]:
    """`airflow db check` in the container `name` with its rendered env and mounts; the DB Secret holds the URL
    `make deploy` writes for `host`, the CA ConfigMap holds `bundle`; `host` resolves to the test server."""
    from tests.support.pod_runner import run_rendered_container

    pods, configmaps = rendered
    workload, container = name.split("/")
    secrets = {
        DB_SECRET: {"connection": db_url(f"{host}:{db.port}", "postgres", "unchecked: trust auth")},
        "eksflow-airflow-secrets": {
            "fernet-key": "",
            "api-secret-key": "api-key-of-the-test",
            "jwt-secret": "jwt-of-the-test",
        },
    }
    root = tmp_path / name.replace("/", "-")
    root.mkdir(parents=True)
    return run_rendered_container(
        pods[workload],
        container,
        root,
        configmaps={**configmaps, DB_CA_CONFIGMAP: {DB_CA_KEY: bundle}},
        secrets=secrets,
        hosts={RDS_HOST: "127.0.0.1", OTHER_HOST: "127.0.0.1"},
        command=["airflow", "db", "check"],
    )


@pytest.mark.parametrize("name", sorted(DB_CONTAINERS))
def test_each_db_container_connects_with_verify_full_through_the_mounted_bundle(node, tls_db, prod, tmp_path, name):
    code, out = _db_check(tmp_path, prod, name, tls_db, bundle=tls_db.ca_file.read_text())
    assert code == 0 and "Connection successful." in out, out[-3000:]


def test_a_server_whose_certificate_another_ca_signed_is_refused(node, tls_db, prod, tmp_path):
    rogue_ca = serving_pair("not-the-db-ca", RDS_HOST, [], [RDS_HOST]).ca_cert.decode()
    code, out = _db_check(tmp_path, prod, "migrate-db/migrate", tls_db, bundle=rogue_ca)
    assert code != 0 and "certificate verify failed" in out, out[-3000:]


def test_a_certificate_for_another_host_name_is_refused(node, tls_db, prod, tmp_path):
    bundle = tls_db.ca_file.read_text()
    code, out = _db_check(tmp_path, prod, "migrate-db/migrate", tls_db, bundle=bundle, host=OTHER_HOST)
    assert code != 0, out[-3000:]
    assert f'server certificate for "{RDS_HOST}" does not match host name "{OTHER_HOST}"' in out, out[-3000:]


def test_a_pod_without_the_bundle_cannot_connect(node, tls_db, tmp_path):
    """What the chart rendered before: the URL names a bundle no container has (libpq does not fall back)."""
    without = _local_image_render("database.tls.caConfigMap=", values="dev")
    code, out = _db_check(tmp_path, without, "migrate-db/migrate", tls_db, bundle=tls_db.ca_file.read_text())
    assert code != 0 and f'root certificate file "{DB_CA_FILE}" does not exist' in out, out[-3000:]
