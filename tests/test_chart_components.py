"""The chart's Airflow components, rendered by real helm: restricted pods with resources and probes,
migrations that cannot deadlock `helm upgrade --install --wait --rollback-on-failure`, secrets generated once."""

from __future__ import annotations

import pytest

from eksflow.platform import CONTROL_PLANE, POD_TEMPLATE_DIR
from tests.helm import VALUE_FILES, pod_spec, render

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def pod_specs(docs):
    return [(doc, spec) for doc in docs if (spec := pod_spec(doc)) is not None]


def deployments(docs):
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == "Deployment"}


@pytest.fixture(scope="module")
def docs():
    return render()


def test_every_component_is_deployed_with_its_service_account(docs):
    found = deployments(docs)
    assert set(found) == set(COMPONENTS)
    accounts = {c.name: c.service_account for c in CONTROL_PLANE}
    for name, deployment in found.items():
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == accounts[name]
        assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"eksflow.io/node-group": "system"}


def test_every_pod_is_restricted_and_every_container_has_requests_and_a_memory_limit(docs):
    specs = list(pod_specs(docs))
    assert len(specs) >= 6
    for doc, spec in specs:
        where = doc["metadata"]["name"]
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], where
            assert container["resources"]["limits"]["memory"], where


def test_long_running_components_have_probes(docs):
    for name, deployment in deployments(docs).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["name"] == name
        assert "livenessProbe" in container, name
        assert "startupProbe" in container or "readinessProbe" in container, name
    api = deployments(docs)["api-server"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v2/monitor/health"


def test_migrations_run_before_the_release_applies_and_components_wait_for_them(docs):
    (migrate,) = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("migrate-db")]
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    shell, flag, script = migrate["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (shell, flag, script.splitlines()[0]) == ("bash", "-ec", "airflow db migrate")
    # No post-install/post-upgrade hook: nothing runs after the resources --wait is waiting on.
    hooks = [d["metadata"].get("annotations", {}).get("helm.sh/hook", "") for d in docs]
    assert not [h for h in hooks if "post-" in h]
    for name, deployment in deployments(docs).items():
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["args"][:3] == ["airflow", "db", "check-migrations"], name


def test_secrets_are_bootstrapped_once_by_a_hook_before_migrations(docs):
    weights = {
        d["kind"] + "/" + d["metadata"]["name"]: int(d["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
        for d in docs
        if "helm.sh/hook" in d["metadata"].get("annotations", {})
    }
    assert weights["ServiceAccount/eksflow-secrets-bootstrap"] < weights["Job/eksflow-secrets-bootstrap"]
    assert weights["Job/eksflow-secrets-bootstrap"] < weights["Job/eksflow-migrate-db"]
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "eksflow-secrets-bootstrap"]
    assert {"resources": ["secrets"], "resourceNames": ["eksflow-airflow-secrets"], "verbs": ["get"]} in [
        {k: v for k, v in rule.items() if k != "apiGroups"} for rule in role["rules"]
    ]


def test_an_existing_airflow_secret_replaces_the_bootstrap():
    docs = render(sets=("airflowSecrets.existingSecret=airflow-keys",))
    assert not [d for d in docs if "secrets-bootstrap" in d["metadata"]["name"]]
    env = deployments(docs)["scheduler"]["spec"]["template"]["spec"]["containers"][0]["env"]
    fernet = next(e for e in env if e["name"] == "AIRFLOW__CORE__FERNET_KEY")
    assert fernet["valueFrom"]["secretKeyRef"]["name"] == "airflow-keys"


def test_scheduler_mounts_the_pod_templates_where_the_kit_points(docs):
    spec = deployments(docs)["scheduler"]["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "pod-templates")
    assert mount["mountPath"] == POD_TEMPLATE_DIR
    volume = next(v for v in spec["volumes"] if v["name"] == "pod-templates")
    assert volume["configMap"]["name"] == "eksflow-pod-templates"


def test_api_server_service_serves_the_execution_api_port(docs):
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["metadata"]["name"] == "eksflow-api-server" and service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api-server"
    assert service["spec"]["ports"][0]["port"] == 8080


@pytest.mark.parametrize(("env", "expected"), [("dev", set()), ("prod", {"api-server", "scheduler", "triggerer"})])
def test_multi_replica_components_have_disruption_budgets(env, expected):
    docs = render(base=VALUE_FILES[env])
    budgets = {
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in docs if d["kind"] == "PodDisruptionBudget"
    }
    assert budgets == {name for name, d in deployments(docs).items() if d["spec"]["replicas"] > 1} == expected


def test_dag_processor_and_triggerer_run_git_sync_and_read_the_synced_folder(docs):
    from tests.test_chart_config import airflow_cfg

    assert airflow_cfg(docs)["core"]["dags_folder"] == "/opt/airflow/dags/repo/dags"
    for name, others in (("dag-processor", []), ("triggerer", ["trigger-log-server"])):
        containers = deployments(docs)[name]["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == [name, *others, "git-sync"]
        sidecar_env = {e["name"]: e.get("value") for e in containers[-1]["env"]}
        assert sidecar_env["GITSYNC_ONE_TIME"] == "false" and sidecar_env["GITSYNC_PERIOD"] == "60s"
    without = deployments(render(sets=("gitSync.enabled=false",)))
    names = [c["name"] for c in without["triggerer"]["spec"]["template"]["spec"]["containers"]]
    assert names == ["triggerer", "trigger-log-server"]


def test_metrics_are_optional_and_restricted():
    from tests.test_chart_config import airflow_cfg

    assert not airflow_cfg(render()).has_section("metrics")
    docs = render(sets=("metrics.enabled=true",))
    cfg = airflow_cfg(docs)
    assert cfg["metrics"]["statsd_on"] == "True"
    assert cfg["metrics"]["statsd_host"] == "eksflow-statsd.eksflow.svc.cluster.local"
    statsd = deployments(docs)["statsd"]["spec"]["template"]["spec"]
    assert statsd["securityContext"]["runAsNonRoot"] is True
    assert statsd["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert statsd["containers"][0]["resources"]["limits"]["memory"]


def test_the_migration_hook_sets_the_ecs_pool_in_a_real_airflow_db(airflow_home, tmp_path):
    """The hook's own script, run by bash against a copy of a migrated Airflow DB: the pool the kit's ECS
    steps run in exists afterwards with the configured slots, counting deferred tasks."""
    import shutil
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    from eksflow.platform import ECS_RUNTASK_POOL, ECS_RUNTASK_POOL_DESCRIPTION, ECS_RUNTASK_POOL_SLOTS

    home = tmp_path / "airflow"
    shutil.copytree(airflow_home.path, home)
    env = {
        **airflow_home.env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PATH": f"{Path(sys.executable).parent}:{airflow_home.env['PATH']}",
    }

    def hook_script(*sets: str) -> list[str]:
        (job,) = [d for d in render(sets=sets) if d["kind"] == "Job" and d["metadata"]["name"].endswith("migrate-db")]
        return job["spec"]["template"]["spec"]["containers"][0]["args"]

    done = subprocess.run(hook_script(), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with sqlite3.connect(home / "airflow.db") as db:
        pool = db.execute(
            "SELECT slots, description, include_deferred FROM slot_pool WHERE pool = ?", (ECS_RUNTASK_POOL,)
        ).fetchone()
    assert pool == (ECS_RUNTASK_POOL_SLOTS, ECS_RUNTASK_POOL_DESCRIPTION, 1)
    assert f"airflow pools set {ECS_RUNTASK_POOL} 5 " in hook_script("airflow.ecsRunTaskPool.slots=5")[2]


def test_api_server_probes_give_a_slow_database_time_to_answer(docs):
    """The health endpoint queries the metadata DB; Kubernetes' default probe timeout is 1 s."""
    api = deployments(docs)["api-server"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe].get("timeoutSeconds", 1) >= 10, probe


def test_no_rendered_manifest_repeats_a_key(tmp_path):
    """A repeated key (e.g. a label set twice) is silently collapsed by most parsers and refused by others."""
    import yaml

    from tests.helm import CHART, helm, local_value_files

    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
            repeated = {k for k in keys if keys.count(k) > 1}
            assert not repeated, f"repeated keys {repeated} at line {node.start_mark.line + 1}"
            return super().construct_mapping(node, deep)

    for values in [*([v] for v in VALUE_FILES.values()), local_value_files(tmp_path)]:
        files = [a for v in values for a in ("-f", str(v))]
        text = helm("template", "eksflow", str(CHART), *files, "--set", "metrics.enabled=true").stdout
        for doc in yaml.load_all(text, Loader=Strict):
            assert doc is None or doc["kind"], values[0].name


def test_git_sync_runs_as_a_user_its_image_knows(docs):
    """ssh refuses a uid without an /etc/passwd entry; the git-sync image's passwd is read-only."""
    import yaml

    from eksflow_dev.cluster.node.image import resolve
    from tests.helm import CHART

    chart_image = yaml.safe_load((CHART / "values.yaml").read_text())["gitSync"]["image"]
    image = resolve(f"{chart_image['repository']}:{chart_image['tag']}")
    known = {int(line.split(":")[2]) for line in image.passwd}
    for doc, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["name"].startswith("git-sync"):
                uid = container["securityContext"].get("runAsUser", spec["securityContext"].get("runAsUser"))
                assert uid in known, f"{doc['metadata']['name']}/{container['name']} runs as {uid}"


def test_the_triggerer_serves_the_live_logs_of_deferred_tasks_to_the_api_server():
    """The api-server reads a deferred task's log from http://<triggerer host>:<port>/log/ (the host name the
    triggerer recorded: its pod IP), so the triggerer's pod runs a log server (a container of its own, the one
    with the API secret key: tests/test_chart_secrets.py) on the logs volume the triggerer writes to, and the
    policies let the api-server in."""
    docs = render(sets=("networkPolicy.enabled=true",))
    pod = deployments(docs)["triggerer"]["spec"]["template"]["spec"]
    triggerer, server = pod["containers"][0], next(c for c in pod["containers"] if c["name"] == "trigger-log-server")
    assert "--skip-serve-logs" in triggerer["args"]
    assert 'serve_logs(port=conf.getint("logging", "trigger_log_server_port"))' in server["command"][2]
    assert {"name": "trigger-logs", "containerPort": 8794} in server["ports"]
    logs = [m for m in triggerer["volumeMounts"] if m["name"] == "logs"]
    assert logs and logs == [m for m in server["volumeMounts"] if m["name"] == "logs"]
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("airflow-config")]
    cfg = configmap["data"]["airflow.cfg"]
    assert "hostname_callable = airflow.utils.net.get_host_ip_address" in cfg
    assert "trigger_log_server_port = 8794" in cfg
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    ingress = policies["eksflow-trigger-logs"]["spec"]["ingress"][0]
    assert ingress["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api-server"
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8794}]
