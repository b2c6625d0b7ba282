"""One pod on the node, from start to end, in its own thread: sandbox (network namespace + IP), volumes,
init containers in order, the containers with their probes and restart policy, status reported to the API
server, graceful termination when the pod is deleted."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from eksflow_dev.cluster.node import env as envs
from eksflow_dev.cluster.node import image as images
from eksflow_dev.cluster.node import runtime, volumes
from eksflow_dev.cluster.node.probes import Prober

log = logging.getLogger("eksflow.cluster.node")
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0  # the kubelet's crash-loop back-off
MINIMUM_GRACE_SECONDS = 2.0  # the kubelet never kills a container with less (kuberuntime minimumGracePeriodInSeconds)


def _stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    spec: dict
    init: bool = False
    running: runtime.Container | None = None
    restarts: int = 0
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    terminated: dict | None = None
    last: dict | None = None
    retry_at: float = 0.0
    probes: dict[str, Prober] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec["name"]

    def started(self) -> bool:
        startup = self.probes.get("startup")
        return self.running is not None and (startup is None or startup.healthy is True)

    def ready(self) -> bool:
        if not self.started():
            return False
        readiness = self.probes.get("readiness")
        return readiness is None or readiness.healthy is True

    def status(self) -> dict:
        out = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": f"local://{self.spec.get('image')}",
            "restartCount": self.restarts,
            "ready": self.ready(),
            "started": self.started(),
        }
        if self.running is not None:
            out["containerID"] = f"eksflow://{self.running.pid}"
            out["state"] = {"running": {"startedAt": _stamp(self.running.started_at)}}
        elif self.terminated is not None:
            out["state"] = {"terminated": self.terminated}
        else:
            reason, message = self.waiting or ("ContainerCreating", "")
            out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if self.last:
            out["lastState"] = {"terminated": self.last}
        if self.init:
            out.pop("started", None)
        return out


class PodWorker:
    def __init__(self, kubelet, pod: dict):
        self.kubelet, self.pod = kubelet, pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir: Path = kubelet.layout.pod_dir(self.uid)
        self.deleting = threading.Event()
        self.gone = threading.Event()  # the pod object no longer exists
        self.force_grace: float | None = None
        self.sandbox = None
        self.phase = "Pending"
        self.inits = [ContainerState(c, init=True) for c in pod["spec"].get("initContainers") or []]
        self.containers = [ContainerState(c) for c in pod["spec"]["containers"]]
        self.volume_dirs: dict[str, Path] = {}
        self.pod_ip = ""
        self.started_at = _stamp()
        self.message = ""
        self._reported: dict = {}
        self.thread = threading.Thread(target=self._main, name=f"pod-{self.name}", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.thread.start()

    def update(self, pod: dict) -> None:
        self.pod = {**pod, "status": self.pod.get("status")}
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    def removed(self) -> None:
        """The pod object is gone from the API while containers may still run (a force deletion): stop them with
        the kubelet's minimum grace period, as the kubelet does for a pod it no longer finds (pod_workers.go: a
        force deletion overrides the grace to 1 s, which killContainer raises to its 2 s minimum)."""
        self.force_grace = MINIMUM_GRACE_SECONDS
        self.gone.set()
        self.deleting.set()

    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s failed on the node", self.namespace, self.name)
            self.phase = "Failed"
            self.message = "the local node failed to run this pod; see the node log"
            self._report()
        finally:
            self._teardown()
            if self.deleting.is_set() and not self.gone.is_set():
                self.kubelet.finish_deletion(self)
            self.kubelet.forget(self)

    def _run(self) -> None:
        self.sandbox = self.kubelet.network.create_sandbox(self.uid)
        self.pod_ip = self.sandbox.ip
        self.kubelet.write_dns(self)
        self._report()
        while not self._volumes_ready():
            if self.deleting.wait(2.0):
                return
        for state in self.inits:
            if not self._run_init(state):
                return
        for state in self.containers:
            self._start(state)
        self._report()
        while not self.deleting.is_set():
            self._tick()
            self._report()
            if self.phase in ("Succeeded", "Failed"):
                return
            self.deleting.wait(0.5)
        self._stop_all()
        self._report()

    def _volumes_ready(self) -> bool:
        group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup", 0)
        root = self.dir / "volumes"
        try:
            for volume in self.pod["spec"].get("volumes") or []:
                self.volume_dirs[volume["name"]] = volumes.prepare(
                    self.pod, volume, root, self.kubelet.lookup(self.namespace), self.kubelet.token_for(self.pod), group
                )
        except volumes.VolumeError as error:
            self.kubelet.event(self.pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {error}")
            return False
        return True

    # ------------------------------------------------------------------ containers
    def _container_spec(self, spec: dict, image: images.ImageSpec) -> runtime.ContainerSpec:
        pod_ctx = self.pod["spec"].get("securityContext") or {}
        ctx = spec.get("securityContext") or {}
        mounts = []
        for mount in spec.get("volumeMounts") or []:
            source = self.volume_dirs[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
            volume = next(v for v in self.pod["spec"].get("volumes") or [] if v["name"] == mount["name"])
            mounts.append(
                runtime.Mount(source, mount["mountPath"], bool(mount.get("readOnly")) or volumes.read_only(volume))
            )
        container_env = envs.container_env(
            self.pod_with_ip(), spec, self.kubelet.services(), self.kubelet.lookup(self.namespace)
        )
        fs_group = pod_ctx.get("fsGroup")
        return runtime.ContainerSpec(
            name=spec["name"],
            image=image,
            command=spec.get("command"),
            args=spec.get("args"),
            env=container_env,
            working_dir=spec.get("workingDir"),
            run_as_user=ctx.get("runAsUser", pod_ctx.get("runAsUser")),
            run_as_group=ctx.get("runAsGroup", pod_ctx.get("runAsGroup")),
            supplemental_groups=[
                *([fs_group] if fs_group is not None else []),
                *(pod_ctx.get("supplementalGroups") or []),
            ],
            read_only_root=bool(ctx.get("readOnlyRootFilesystem")),
            mounts=mounts,
            log_path=self.kubelet.layout.container_log(self.uid, spec["name"], 0),
            netns=Path(self.sandbox.netns_path),
            memory_limit=envs.memory_limit(spec),
            hosts_file=self.dir / "hosts",
            resolv_conf=self.dir / "resolv.conf",
            hostname=self.name,
            cgroup_parent=self.kubelet.cgroup_parent,
        )

    def pod_with_ip(self) -> dict:
        pod = dict(self.pod)
        pod["status"] = {**(pod.get("status") or {}), "podIP": self.pod_ip, "hostIP": self.kubelet.host_ip}
        return pod

    def _start(self, state: ContainerState) -> bool:
        try:
            image = images.resolve(state.spec.get("image", ""))
        except images.ImageUnavailable as error:
            state.waiting, state.retry_at = ("ErrImagePull", str(error)), time.monotonic() + 5
            return False
        if image is None:
            reason = "ErrImageNeverPull" if state.spec.get("imagePullPolicy") == "Never" else "ImagePullBackOff"
            known = [*images.PLATFORM_REFS, *(f"{images.GITSYNC_REPOSITORY}:{t}" for t in images.GITSYNC_TAGS)]
            message = f'image "{state.spec.get("image")}" is not on the local node (its images: {", ".join(known)})'
            if state.waiting != (reason, message):
                self.kubelet.event(self.pod, "Warning", "Failed", f"Error: {reason}: {message}")
            state.waiting = (reason, message)
            state.retry_at = time.monotonic() + 5
            return False
        try:
            spec = self._container_spec(state.spec, image)
        except envs.EnvError as error:
            if state.waiting != ("CreateContainerConfigError", str(error)):
                self.kubelet.event(self.pod, "Warning", "Failed", f"Error: {error}")
            state.waiting = ("CreateContainerConfigError", str(error))
            state.retry_at = time.monotonic() + 2
            return False
        spec.log_path = self.kubelet.layout.container_log(self.uid, state.name, state.restarts)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        state.running = runtime.start(spec)
        state.waiting, state.terminated = None, None
        self.kubelet.event(self.pod, "Normal", "Started", f"Started container {state.name}")
        if not state.init:
            self._start_probes(state)
        return True

    def _start_probes(self, state: ContainerState) -> None:
        for kind in ("startup", "readiness", "liveness"):
            spec = state.spec.get(f"{kind}Probe")
            if not spec:
                continue
            container = state.running

            def run_exec(argv, timeout, container=container):
                return container.exec(argv, timeout)[0]

            gate = None if kind == "startup" else (lambda s=state: s.started())
            prober = Prober(
                kind,
                spec,
                state.spec,
                self.pod_ip,
                run_exec,
                lambda t, r, m, n=state.name: self.kubelet.event(self.pod, t, r, f"{m} (container {n})"),
                gate,
            )
            state.probes[kind] = prober
            prober.start()

    def _stop_probes(self, state: ContainerState) -> None:
        for prober in state.probes.values():
            prober.stop()
        state.probes = {}

    def _finished(self, state: ContainerState) -> dict:
        container = state.running
        code = container.wait(timeout=5)
        state.running = None
        self._stop_probes(state)
        result = {
            "exitCode": code,
            "reason": container.reason,
            "startedAt": _stamp(container.started_at),
            "finishedAt": _stamp(container.finished_at),
            "containerID": f"eksflow://{container.pid}",
        }
        container.cleanup()
        state.terminated = result
        return result

    def _restart_wanted(self, state: ContainerState, code: int) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if state.init and policy == "Always":
            policy = "OnFailure"  # init containers are retried until they succeed
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _schedule_restart(self, state: ContainerState) -> None:
        delay = min(BACKOFF_START * 2**state.restarts, BACKOFF_MAX)
        state.last = state.terminated
        state.terminated = None
        state.restarts += 1
        state.retry_at = time.monotonic() + delay
        state.waiting = ("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container={state.name}")

    def _run_init(self, state: ContainerState) -> bool:
        while not self.deleting.is_set():
            if state.running is None and time.monotonic() >= state.retry_at and not self._start(state):
                self._report()
                self.deleting.wait(2.0)
                continue
            self._report()
            while state.running is not None and state.running.poll() is None:
                if self.deleting.wait(0.5):
                    state.running.stop(self._grace())
            if state.running is not None:
                code = self._finished(state)["exitCode"]
                if code == 0:
                    return True
                if self.deleting.is_set() or not self._restart_wanted(state, code):
                    self.phase = "Failed"
                    self._report()
                    return False
                self._schedule_restart(state)
            self._report()
            self.deleting.wait(max(0.0, min(1.0, state.retry_at - time.monotonic())))
        return False

    def _tick(self) -> None:
        for state in self.containers:
            if state.running is not None:
                liveness = state.probes.get("liveness")
                startup = state.probes.get("startup")
                if (liveness and liveness.failed) or (startup and startup.failed):
                    which = "Liveness" if liveness and liveness.failed else "Startup"
                    self.kubelet.event(
                        self.pod,
                        "Normal",
                        "Killing",
                        f"Container {state.name} failed {which.lower()} probe, will be restarted",
                    )
                    state.running.stop(self._grace())
                if state.running.poll() is None:
                    continue
                code = self._finished(state)["exitCode"]
                if self._restart_wanted(state, code):
                    self._schedule_restart(state)
            elif state.terminated is None and time.monotonic() >= state.retry_at:
                self._start(state)
        if all(s.running is None and s.terminated is not None for s in self.containers):
            failed = any(s.terminated["exitCode"] != 0 for s in self.containers)
            self.phase = "Failed" if failed else "Succeeded"
        elif any(s.running is not None for s in self.containers) or self.phase == "Running":
            self.phase = "Running"

    def _grace(self) -> float:
        meta = self.pod["metadata"]
        if self.force_grace is not None:
            return self.force_grace
        grace = float(meta.get("deletionGracePeriodSeconds", self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        return max(grace, MINIMUM_GRACE_SECONDS)

    def _stop_all(self) -> None:
        grace = self._grace()
        running = [s for s in self.containers + self.inits if s.running is not None]
        threads = [threading.Thread(target=s.running.stop, args=(grace,), daemon=True) for s in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(grace + 15)
        for state in running:
            if state.running is not None:
                self._finished(state)

    def _teardown(self) -> None:
        for state in self.containers + self.inits:
            self._stop_probes(state)
            if state.running is not None:
                with contextlib.suppress(Exception):
                    state.running.stop(0)
                    state.running.cleanup()
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                self.kubelet.network.delete_sandbox(self.sandbox)
            self.sandbox = None

    # ------------------------------------------------------------------ status
    def _report(self) -> None:
        if self.gone.is_set():
            return
        inits_done = all(s.terminated is not None and s.terminated["exitCode"] == 0 for s in self.inits)
        ready = self.phase == "Running" and all(s.ready() for s in self.containers)
        ready = ready and not self.deleting.is_set()
        conditions = [
            ("PodReadyToStartContainers", self.sandbox is not None or self.phase != "Pending"),
            ("Initialized", inits_done),
            ("ContainersReady", ready),
            ("Ready", ready),
            ("PodScheduled", True),
        ]
        previous = {c["type"]: c for c in (self.pod.get("status") or {}).get("conditions") or []}
        status = {
            "phase": self.phase,
            "hostIP": self.kubelet.host_ip,
            "hostIPs": [{"ip": self.kubelet.host_ip}],
            "startTime": self.started_at,
            "qosClass": "Burstable",
            "conditions": [
                {
                    "type": kind,
                    "status": "True" if ok else "False",
                    "lastTransitionTime": previous[kind]["lastTransitionTime"]
                    if kind in previous and previous[kind]["status"] == ("True" if ok else "False")
                    else _stamp(),
                    **(
                        {}
                        if ok or kind == "PodScheduled"
                        else {
                            "reason": "ContainersNotReady"
                            if kind in ("Ready", "ContainersReady")
                            else "PodInitializing"
                        }
                    ),
                }
                for kind, ok in conditions
            ],
            "containerStatuses": [s.status() for s in self.containers],
        }
        if self.pod_ip:
            status["podIP"], status["podIPs"] = self.pod_ip, [{"ip": self.pod_ip}]
        if self.inits:
            status["initContainerStatuses"] = [s.status() for s in self.inits]
        if self.message:
            status["message"] = self.message
        comparable = {k: v for k, v in status.items() if k != "conditions"}
        comparable["conditions"] = [(c["type"], c["status"]) for c in status["conditions"]]
        if comparable == self._reported:
            return
        if self.kubelet.patch_status(self, status):
            self._reported = comparable
            self.pod["status"] = status
