"""Container probes (exec, httpGet, tcpSocket) with the kubelet's timing and thresholds; each probe of each
container runs in its own thread and publishes its verdict."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable

DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def _port(value, container: dict) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return port["containerPort"]
    raise ValueError(f"probe port {value!r} names no port of container {container['name']}")


def check(spec: dict, container: dict, pod_ip: str, run_exec: Callable[[list[str], float], int]) -> tuple[bool, str]:
    timeout = float(spec.get("timeoutSeconds", DEFAULTS["timeoutSeconds"]))
    try:
        if "exec" in spec:
            code = run_exec(spec["exec"]["command"], timeout)
            return code == 0, f"command exited with {code}"
        if "httpGet" in spec:
            get = spec["httpGet"]
            conn_class = http.client.HTTPSConnection if get.get("scheme") == "HTTPS" else http.client.HTTPConnection
            conn = conn_class(get.get("host") or pod_ip, _port(get["port"], container), timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                conn.request("GET", get.get("path", "/"), headers={"User-Agent": "kube-probe/1.34", **headers})
                status = conn.getresponse().status
            finally:
                conn.close()
            return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in spec:
            with socket.create_connection((pod_ip, _port(spec["tcpSocket"]["port"], container)), timeout=timeout):
                return True, ""
    except (OSError, http.client.HTTPException, ValueError) as error:
        return False, f"{type(error).__name__}: {error}"
    return False, "probe type not supported"


class Prober:
    """One probe of one container: `healthy` after successThreshold successes, unhealthy after
    failureThreshold failures (an unknown start counts as not healthy)."""

    def __init__(
        self,
        kind: str,
        spec: dict,
        container: dict,
        pod_ip: str,
        run_exec,
        on_event=None,
        gate: Callable[[], bool] | None = None,
    ):
        self.kind, self.spec = kind, {**DEFAULTS, **spec}
        self.container, self.pod_ip, self.run_exec = container, pod_ip, run_exec
        self.on_event = on_event or (lambda *a: None)
        self.gate = gate or (lambda: True)
        self.healthy: bool | None = None
        self.failed = False  # failureThreshold reached
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{kind}-{container['name']}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        successes = failures = 0
        if self._stop.wait(self.spec["initialDelaySeconds"]):
            return
        while not self._stop.is_set():
            if self.gate():
                ok, message = check(self.spec, self.container, self.pod_ip, self.run_exec)
                if self._stop.is_set():
                    return
                if ok:
                    successes, failures = successes + 1, 0
                    if successes >= self.spec["successThreshold"]:
                        self.healthy = True
                        if self.kind == "startup":
                            return  # a startup probe stops once it succeeded
                else:
                    successes, failures = 0, failures + 1
                    self.on_event("Warning", "Unhealthy", f"{self.kind.capitalize()} probe failed: {message}")
                    if failures >= self.spec["failureThreshold"]:
                        self.healthy, self.failed = False, True
            self._stop.wait(self.spec["periodSeconds"])
