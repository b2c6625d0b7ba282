# syntax=docker/dockerfile:1.7
# The eksflow Airflow image: the official Airflow image plus exactly the versions pinned in requirements.lock
# (the ones the tests run) and the eksflow package. DAGs come by git-sync and pod templates from the chart's
# ConfigMap, so neither is baked in; developer tooling (src/eksflow_dev: AWS emulator, local cluster,
# deploy, kind, bench) stays out, and of the `eksflow` command only `roles` works here.
# The base tag (in both stages) must name the Airflow version pinned in requirements.lock (tested).

# Build stage: the eksflow wheel (setuptools stays here, not in the final image).
FROM apache/airflow:3.3.2-python3.12 AS build
WORKDIR /home/airflow/eksflow
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 src/eksflow ./src/eksflow
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /home/airflow/wheels .

FROM apache/airflow:3.3.2-python3.12
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/eksflow
LABEL org.opencontainers.image.title="eksflow" \
      org.opencontainers.image.description="Apache Airflow 3 for EKS with the eksflow DAG kit" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /home/airflow/wheels /tmp/eksflow-wheels
COPY requirements.lock /tmp/requirements.lock
# -c: every dependency resolves to the locked version; the image's own Airflow stays 3.3.2 (pinned in the lock).
RUN pip install --no-cache-dir -c /tmp/requirements.lock /tmp/eksflow-wheels/eksflow-*.whl \
    && pip check \
    && rm -rf /tmp/eksflow-wheels /tmp/requirements.lock
# The official image's airflow user (uid 50000, group 0), numeric so runAsNonRoot can verify it.
USER 50000
# Kubernetes probes (in the chart) check health; Docker's HEALTHCHECK is not used there.
HEALTHCHECK NONE
