"""A stand-in for Amazon's RDS trust store (https://truststore.pki.rds.amazonaws.com, which this machine cannot
reach): an HTTPS server on 127.0.0.1 whose certificate comes from a CA of its own, and CA bundles to serve."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from eksflow_dev.cluster.pki import serving_pair

REGION_BUNDLE = "/eu-west-1/eu-west-1-bundle.pem"  # the path of eu-west-1's bundle in the trust store


@contextlib.contextmanager
def trust_store(tmp_path: Path, files: dict[str, bytes]) -> Iterator[tuple[str, Path]]:
    """Serves `files` by path over HTTPS (unknown paths: 404); yields its base URL (https://localhost:<port>) and the
    file of its CA, for SSL_CERT_FILE (what the machine that fetches trusts)."""
    pair = serving_pair("trust-store-test-ca", "localhost", ["127.0.0.1"], ["localhost"])
    (tmp_path / "store.crt").write_bytes(pair.cert)
    (tmp_path / "store.key").write_bytes(pair.key)
    (tmp_path / "store-ca.pem").write_bytes(pair.ca_cert)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "store.crt", tmp_path / "store.key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_port}", tmp_path / "store-ca.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def ca_bundle() -> bytes:
    """Two CAs, as a regional RDS bundle holds several (RSA2048, RSA4096, ECC384 G1)."""
    return b"".join(serving_pair(f"rds-test-ca-{n}", "db", [], ["db"]).ca_cert for n in (1, 2))
