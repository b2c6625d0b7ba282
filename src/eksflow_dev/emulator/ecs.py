"""ECS in the local emulator, where moto 5.2.5 falls short of what EcsRunTaskOperator and the pipelines need:

- awsvpc tasks can start (moto's ENI lacks ``private_dns_name``);
- a task definition whose containers leave memory to the task (Fargate: task-level ``memory``, as Terraform's
  workloads module registers them) can run (moto's RunTask added each container's memory and failed on None: 500);
- a task's containers follow the task's status (moto leaves them PENDING, which makes EcsRunTaskOperator
  fail), and a container exits with ``EMULATED_EXIT_CODE`` from its environment overrides (default 0), so
  tests can make a task fail; a task that exits 0 writes a ``_SUCCESS`` object under the ``OUTPUT_URI`` of
  its environment overrides, as the real container writes its output;
- a revision records when it was registered (``registeredAt``), and ListTaskDefinitions sorts (``sort``: ASC, the
  default, by family then revision; DESC the reverse) and pages (``maxResults`` 1-100, default 100; ``nextToken``) as
  ECS does — moto has no ``registeredAt`` and lists everything in one page in registration order; the kit finds the
  revision a DAG run started with by both.

How long a task runs is moto's state manager (``ecs::task`` transitions), set by
``server.configure_job_durations``.
"""

from __future__ import annotations

from typing import Any

ECS_TASK_TRANSITIONS = 4  # RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED


def _override_env(task: Any, container_name: str | None = None) -> dict[str, str]:
    """Environment overrides of the task's containers (of one container when a name is given)."""
    env: dict[str, str] = {}
    for override in task.overrides.get("containerOverrides", []) or []:
        if container_name and override.get("name") not in (None, container_name):
            continue
        for item in override.get("environment", []) or []:
            env[item.get("name", "")] = item.get("value", "")
    return env


def _write_output_marker(task: Any) -> None:
    """What the real container would do: leave its output under OUTPUT_URI (here a _SUCCESS marker)."""
    uri = _override_env(task).get("OUTPUT_URI", "")
    if not uri.startswith("s3://"):
        return
    from moto.s3.models import s3_backends

    bucket, _, prefix = uri[len("s3://") :].partition("/")
    backend = s3_backends[task._account_id]["aws"]
    if bucket in backend.buckets:
        key = f"{prefix.rstrip('/')}/_SUCCESS".lstrip("/")
        backend.put_object(bucket, key, f"written by ECS task {task.id}\n".encode())


def _sync_task(task: Any) -> None:
    status = task.last_status  # reading advances moto's state manager
    for container in task.containers:
        if status == "STOPPED":
            container.last_status = "STOPPED"
            container.exitCode = int(_override_env(task, container.name).get("EMULATED_EXIT_CODE", "0"))
        else:
            container.last_status = "RUNNING"
    if status == "STOPPED" and task.desired_status != "STOPPED":
        task.desired_status = "STOPPED"
        if not task.stopped_reason:
            task.stopped_reason = "Essential container in task exited"
        if all(c.exitCode == 0 for c in task.containers):
            _write_output_marker(task)


def _family_and_revision(arn: str) -> tuple[str, int]:
    family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
    return family, int(revision)


def patch_task_definition_listing() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.models import TaskDefinition
    from moto.ecs.responses import EC2ContainerServiceResponse

    original_init = TaskDefinition.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.registered_at = utcnow()  # serialized as registeredAt

    def list_task_definitions(self) -> ActionResult:
        arns = self.ecs_backend.list_task_definitions(
            self._get_param("familyPrefix"), self._get_param("status", "ACTIVE")
        )
        arns = sorted(arns, key=_family_and_revision, reverse=self._get_param("sort") == "DESC")
        size = self._get_param("maxResults", 100)
        if not 1 <= size <= 100:
            raise InvalidParameterException("maxResults must be between 1 and 100")
        start = int(self._get_param("nextToken") or 0)
        result: dict[str, Any] = {"taskDefinitionArns": arns[start : start + size]}
        if start + size < len(arns):
            result["nextToken"] = str(start + size)
        return ActionResult(result)

    TaskDefinition.__init__ = init
    EC2ContainerServiceResponse.list_task_definitions = list_task_definitions


def patch_latest_active_revision() -> None:
    """A family named without a revision (DescribeTaskDefinition, RunTask, and the IAM check of RunTask's resource)
    is its latest ACTIVE revision, as in ECS; moto 5.2.5 takes the highest revision even when deregistered."""
    from moto.ecs.exceptions import TaskDefinitionNotFoundException
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.describe_task_definition

    def describe_task_definition(self, task_definition_str: str):
        name = task_definition_str.split("/")[-1]
        if ":" in name:
            return original(self, task_definition_str)
        active = [rev for rev, d in self.task_definitions.get(name, {}).items() if d.status == "ACTIVE"]
        if not active:
            raise TaskDefinitionNotFoundException()
        return self.task_definitions[name][max(active)]

    EC2ContainerServiceBackend.describe_task_definition = describe_task_definition


def patch_ecs() -> None:
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ecs.models import EC2ContainerServiceBackend

    patch_task_definition_listing()
    patch_latest_active_revision()

    if not hasattr(NetworkInterface, "private_dns_name"):
        # RunTask with awsvpc networking reads it from the task's ENI; moto 5.2.5 sets it only in VPCs with
        # DNS hostnames enabled (NAT gateways and VPC endpoints set it, so the property needs a setter).
        def get_dns_name(eni):
            return eni.__dict__.get("_dns_name") or f"ip-{eni.private_ip_address.replace('.', '-')}.ec2.internal"

        def set_dns_name(eni, value):
            eni.__dict__["_dns_name"] = value

        NetworkInterface.private_dns_name = property(get_dns_name, set_dns_name)

    original_describe = EC2ContainerServiceBackend.describe_tasks
    original_list = EC2ContainerServiceBackend.list_tasks

    def describe_tasks(self, cluster_str, tasks):
        found = original_describe(self, cluster_str, tasks)
        for task in found:
            _sync_task(task)
        return found

    def list_tasks(self, *args, **kwargs):
        for cluster_tasks in self.tasks.values():
            for task in cluster_tasks.values():
                _sync_task(task)
        return original_list(self, *args, **kwargs)

    EC2ContainerServiceBackend.describe_tasks = describe_tasks
    EC2ContainerServiceBackend.list_tasks = list_tasks
    _task_level_memory(EC2ContainerServiceBackend)


_MEMORY_KEYS = ("memory", "Memory", "memoryReservation", "MemoryReservation")


def _task_level_memory(backend_class) -> None:
    from types import SimpleNamespace

    original = backend_class._calculate_task_resource_requirements

    def calculate(task_definition):
        containers = task_definition.container_definitions
        if all(any(key in c for key in _MEMORY_KEYS) for c in containers):
            return original(task_definition)
        # The task's memory, shared by the containers without their own (only EC2 placement reads the sum).
        share = int(task_definition.memory or 0) // max(len(containers), 1)
        filled = [c if any(key in c for key in _MEMORY_KEYS) else {**c, "memory": share} for c in containers]
        return original(SimpleNamespace(container_definitions=filled))

    backend_class._calculate_task_resource_requirements = staticmethod(calculate)
