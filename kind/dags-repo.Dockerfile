# syntax=docker/dockerfile:1.7
# The DAG repository for kind clusters (kind/manifests/dags-repo.yaml): a bare copy of this repository at
# the commit under test, served over plain HTTP inside the cluster for git-sync. Built by kind/up.sh with
# build/kind/repo/ (holding eksflow.git) as the context.
ARG BASE=eksflow:kind
# checkov:skip=CKV_DOCKER_7: BASE is the eksflow image kind/up.sh just built, tagged kind-<git sha> (never latest)
FROM ${BASE}
COPY --chown=50000:0 eksflow.git /srv/git/eksflow.git
USER 50000
EXPOSE 8000
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "http.server", "--directory", "/srv/git", "--bind", "0.0.0.0"]
CMD ["8000"]
