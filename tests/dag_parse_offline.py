"""Parse the DAG folder with every network connection refused and report what happened (JSON on stdout).

Run as a script by test_dag_integrity: a DAG file that calls AWS, or reads a Variable/Connection (which
would go to the metadata DB or a secrets backend over the network), at parse time shows up here.
"""

from __future__ import annotations

import json
import socket
import sys
import time

attempts: list[str] = []
_real_connect = socket.socket.connect


def _refuse(self, address):
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    attempts.append(repr(address))
    raise ConnectionRefusedError(f"network is closed during DAG parsing: {address!r}")


socket.socket.connect = _refuse  # type: ignore[method-assign]
socket.create_connection = lambda address, *a, **k: _refuse(socket.socket(), address)  # type: ignore[assignment]

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

per_file: dict[str, float] = {}
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(
    json.dumps(
        {
            "dag_ids": sorted(bag.dag_ids),
            "import_errors": bag.import_errors,
            "connect_attempts": attempts,
            "seconds": time.perf_counter() - started,
        }
    )
)
