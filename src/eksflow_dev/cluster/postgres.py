"""A throwaway PostgreSQL server on 127.0.0.1 (the local cluster's metadata DB, as RDS is on EKS), run as the
`postgres` user when started by root (initdb refuses root), stopped by its own pg_ctl. With `tls_names` it takes
TCP connections only over TLS (as RDS with rds.force_ssl), its certificate issued for those names by a CA of its
own (`Postgres.ca_file`), so clients can verify it (sslmode=verify-full)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eksflow_dev.cluster.pki import serving_pair
from eksflow_dev.local import processes


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def missing() -> str | None:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
            os.environ["PATH"] = f"{os.environ['PATH']}:{candidate}"
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
    return None


@dataclass
class Postgres:
    root: Path
    port: int
    database: str = "airflow"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def pid(self) -> int:
        return int((self.root / "data" / "postmaster.pid").read_text().splitlines()[0])

    @property
    def ca_file(self) -> Path:
        """The CA that issued the server's certificate (started with tls_names)."""
        return self.root / "ca.pem"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(["pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _tls_options(root: Path, names: tuple[str, ...]) -> str:
    """The server's certificate for these names, its CA in root/ca.pem; TCP clients must use TLS (pg_hba)."""
    pair = serving_pair("eksflow-local-db-ca", names[0], [], list(names))
    (root / "ca.pem").write_bytes(pair.ca_cert)
    (root / "server.crt").write_bytes(pair.cert)
    key = root / "server.key"
    key.write_bytes(pair.key)
    key.chmod(0o600)  # PostgreSQL refuses a key others can read
    hba = root / "data" / "pg_hba.conf"
    hba.write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    if os.geteuid() == 0:
        for path in (root / "ca.pem", root / "server.crt", key, hba):
            shutil.chown(path, "postgres")
    return f" -c ssl=on -c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={key}"


def start(database: str = "airflow", tls_names: tuple[str, ...] = ()) -> Postgres:
    problem = missing()
    if problem:
        raise RuntimeError(problem)
    # Not under a private folder of root's: the postgres user must be able to enter it.
    root = Path(tempfile.mkdtemp(prefix="eksflow-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        root.chmod(0o700)

    def run(argv, check=True):
        return subprocess.run(_as_postgres(argv), check=check, capture_output=True, text=True, timeout=120)

    run(["initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--encoding", "UTF8", "--locale", "C"])
    options = "-k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if tls_names:
        options += _tls_options(root, tls_names)
    for _ in range(3):  # a free port can be taken by another process before the server binds it: pick again
        port = processes.free_port()
        log = root / "server.log"
        argv = [
            "pg_ctl",
            "-D",
            str(root / "data"),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} " + options.format(root=root),
            "start",
        ]
        started = run(argv, check=False)
        if started.returncode == 0:
            break
    else:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()}\n{tail}")
    run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database])
    return Postgres(root, port, database)
