"""The control-plane process of the local cluster: the API server (HTTPS on 127.0.0.1) and the controllers.
`python -m eksflow_dev.cluster.controlplane --state-dir D --port P --kubernetes-version 1.34.0 --region R`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from eksflow_dev.cluster.api.resources import BY_PATH
from eksflow_dev.cluster.api.server import Api, serve
from eksflow_dev.cluster.api.store import Store
from eksflow_dev.cluster.controllers import Controllers
from eksflow_dev.cluster.layout import Layout
from eksflow_dev.cluster.pki import Pki, Tokens

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def bootstrap(api: Api, api_port: int, gateway: str) -> None:
    """What a fresh cluster has: the system namespaces and the `kubernetes` Service, whose endpoint is the
    node's gateway (the node forwards it to this server on the host)."""
    for name in SYSTEM_NAMESPACES:
        api.create(BY_PATH[("", "v1", "namespaces")], "", {"metadata": {"name": name}})
    api.create(
        BY_PATH[("", "v1", "services")],
        "default",
        {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": api_port, "protocol": "TCP"}]},
        },
    )
    api.create(
        BY_PATH[("", "v1", "endpoints")],
        "default",
        {
            "metadata": {"name": "kubernetes"},
            "subsets": [{"addresses": [{"ip": gateway}], "ports": [{"name": "https", "port": api_port}]}],
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eksflow-local-controlplane")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--gateway", default="10.244.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    layout = Layout(__import__("pathlib").Path(args.state_dir))
    pki = Pki(layout.pki_dir)
    store = Store()
    api = Api(store, layout, Tokens(pki), args.kubernetes_version, args.region)
    bootstrap(api, args.port, args.gateway)
    server = serve(api, "127.0.0.1", args.port, pki.server_cert, pki.server_key)
    controllers = Controllers(api)
    controllers.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.info("API server on https://127.0.0.1:%d (Kubernetes %s)", args.port, args.kubernetes_version)
    stop.wait()
    controllers.stop()
    store.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
