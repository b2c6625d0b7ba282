# syntax=docker/dockerfile:1.7
# The AWS emulator for kind clusters (kind/manifests/aws-emulator.yaml): the eksflow image plus moto's
# server at the version the tests use and the emulator package (src/eksflow_dev/emulator: developer tooling,
# which the eksflow image leaves out, copied here alone). Build from the repository root after the eksflow image:
#   docker build -f kind/emulator.Dockerfile --build-arg BASE=eksflow:<tag> -t eksflow-emulator:kind .
ARG BASE=eksflow:kind
# checkov:skip=CKV_DOCKER_7: BASE is the eksflow image kind/up.sh just built, tagged kind-<git sha> (never latest)
FROM ${BASE}
COPY requirements.lock /tmp/requirements.lock
# Versions come from the lock (-c), as in the eksflow image.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c /tmp/requirements.lock "moto[server]" \
    && pip check \
    && rm /tmp/requirements.lock
# Only the emulator of the dev-only package (it imports moto, the standard library and eksflow; tested).
COPY src/eksflow_dev/__init__.py /opt/eksflow-dev/eksflow_dev/__init__.py
COPY src/eksflow_dev/emulator /opt/eksflow-dev/eksflow_dev/emulator
ENV PYTHONPATH=/opt/eksflow-dev
USER 50000
EXPOSE 5000
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "eksflow_dev.emulator"]
CMD ["--host", "0.0.0.0", "--port", "5000"]
