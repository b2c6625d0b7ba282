"""The network is closed while a DAG file is imported: a DAG file calling AWS (or anything over TCP/UDP), or reading
a Variable or Connection, at parse time fails to import with an error naming the file, line and what it reached —
in the dag-processor, the workers and `eksflow check` alike. Code that runs later (tasks, callbacks) is untouched:
only calls made while Airflow's importer executes a DAG file are refused (the Unix sockets Airflow's processes talk
over stay open).

A guard against mistakes, not a sandbox: DAG code runs with the process's rights and could undo it; what holds DAG
code to its limits is the task role's IAM policy and the NetworkPolicies. Installed by the ``airflow.policy`` entry
point (eksflow.policy) in every Airflow process.
"""

from __future__ import annotations

import socket
import sys

IMPORTER = "airflow/dag_processing/importers/python_importer.py"
attempts: list[dict] = []  # every refused call: target, the DAG file and line that made it, the error message

_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo
_installed = False


class NetworkClosedDuringParse(ConnectionRefusedError):
    pass


def _dag_file_frame() -> tuple[str, int] | None:
    """The DAG file Airflow's importer is executing and the line of it on the stack; None outside an import."""
    frame, lines = sys._getframe(2), []
    while frame is not None:
        if frame.f_code.co_filename.endswith(IMPORTER) and "filepath" in frame.f_locals:
            dag_file = str(frame.f_locals["filepath"])
            line = next((lineno for filename, lineno in lines if filename == dag_file), 0)
            return dag_file, line
        lines.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return None


def _refused(target: str) -> NetworkClosedDuringParse | None:
    where = _dag_file_frame()
    if where is None:
        return None
    dag_file, line = where
    message = (
        f"{dag_file}:{line} reaches {target} while the DAG file is parsed: the network is closed then (the "
        "dag-processor parses every file every few minutes); call AWS and read Variables inside a task"
    )
    attempts.append({"target": target, "file": dag_file, "line": line, "message": message})
    return NetworkClosedDuringParse(message)


def _connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and (error := _refused(f"{address[0]}:{address[1]}")):
        raise error
    return _real_connect(self, address)


def _getaddrinfo(host, port, *args, **kwargs):
    if error := _refused(f"{host}:{port}"):
        raise error
    return _real_getaddrinfo(host, port, *args, **kwargs)


def install() -> None:
    """Close TCP/UDP while a DAG file is imported (idempotent)."""
    global _installed
    if not _installed:
        socket.socket.connect = _connect  # type: ignore[method-assign]
        socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
        _installed = True


def install_variable_guard() -> None:
    """Refuse Variable and Connection reads while a DAG file is imported: in the dag-processor's parsing child they
    go to its parent over a Unix socket (and on to the metadata DB or the secrets backend) on every parse. Patched
    where the Task SDK looks them up at call time (airflow.sdk Variable.get / Connection.get). Idempotent."""
    from airflow.sdk.execution_time import context

    for name, what in (("_get_variable", "Variable"), ("_get_connection", "Connection")):
        original = getattr(context, name)
        if getattr(original, "_eksflow_guarded", False):
            continue

        def guarded(key, *args, _original=original, _what=what, **kwargs):
            if error := _refused(f"{_what} {key!r}"):
                raise error
            return _original(key, *args, **kwargs)

        guarded._eksflow_guarded = True  # type: ignore[attr-defined]
        setattr(context, name, guarded)
