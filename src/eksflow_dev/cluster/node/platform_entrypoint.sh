#!/usr/bin/env bash
# /entrypoint of the local eksflow platform image (eksflow_dev.cluster.node.image): behaves like the official
# Airflow image's entrypoint (scripts/docker/entrypoint_prod.sh in apache/airflow) for the facts listed in
# image.py. Run as: dumb-init -- /entrypoint [args...]  (the container's args, when it sets no command).
first_arg="${1:-}"

set -euo pipefail

# The official image preloads libstdc++ (the "cannot allocate memory in static TLS block" workaround,
# apache/airflow#17546); done here only when the library exists on this node.
libstdcxx="/usr/lib/$(uname -m)-linux-gnu/libstdc++.so.6"
if [[ -e ${libstdcxx} ]]; then
    export LD_PRELOAD="${libstdcxx}"
fi

# Runs a command line until it succeeds: CONNECTION_CHECK_MAX_COUNT tries, CONNECTION_CHECK_SLEEP_TIME apart;
# prints a dot per failure and, when the tries run out, the last output, then exits 1.
retry_until_ok() {
    local check="$1"
    local left="${CONNECTION_CHECK_MAX_COUNT}"
    local output status
    while true; do
        set +e
        output=$(eval "${check} 2>&1")
        status=$?
        set -e
        if [[ ${status} == 0 ]]; then
            echo
            return 0
        fi
        echo -n "."
        left=$((left - 1))
        if [[ ${left} == 0 ]]; then
            echo
            echo "ERROR! Maximum number of retries (${CONNECTION_CHECK_MAX_COUNT}) reached."
            echo
            echo "Last check result:"
            echo "$ ${check}"
            echo "${output}"
            echo
            exit 1
        fi
        sleep "${CONNECTION_CHECK_SLEEP_TIME}"
    done
}

# TCP reachability (the official image uses `nc -zvvn`; this node has no netcat, so Python does it).
tcp_open() {
    python -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()' \
        "$1" "$2"
}

url_part() {
    python -c 'import sys, urllib.parse as up; print(getattr(up.urlsplit(sys.argv[1]), sys.argv[2]) or "")' \
        "$1" "$2"
}

# Waits for the broker of a URL: BACKEND, DB_HOST and DB_PORT may be given as env to override the URL's.
wait_for_broker_url() {
    local url="$1" port
    echo BACKEND="${BACKEND:=$(url_part "${url}" scheme)}"
    port="$(url_part "${url}" port)"
    if [[ -z ${port} ]]; then
        case "${BACKEND}" in
            postgres*) port=5432 ;;
            mysql*) port=3306 ;;
            mssql*) port=1433 ;;
            redis*) port=6379 ;;
            amqp*) port=5672 ;;
        esac
    fi
    local host
    host="$(url_part "${url}" hostname)"
    echo DB_HOST="${DB_HOST:=${host:-localhost}}"
    echo DB_PORT="${DB_PORT:=${port}}"
    if [[ -n ${DB_HOST} && -n ${DB_PORT} ]]; then
        retry_until_ok "tcp_open ${DB_HOST@Q} ${DB_PORT@Q}"
    else
        >&2 echo "The connection details to the broker could not be determined. Connectivity checks were skipped."
    fi
}

wait_for_celery_broker_if_celery() {
    if [[ "$(airflow config get-value core executor)" == "CeleryExecutor" ]]; then
        wait_for_broker_url "$(airflow config get-value celery broker_url)"
    fi
}

# _AIRFLOW_WWW_USER_CREATE: an admin user from _AIRFLOW_WWW_USER_* (the password, or a command printing it, is
# required); failures of `airflow users create` are ignored, as in the official image.
create_admin_user() {
    local password=""
    if [[ -n "${_AIRFLOW_WWW_USER_PASSWORD_CMD:-}" ]]; then
        password=$(eval "${_AIRFLOW_WWW_USER_PASSWORD_CMD}")
        unset _AIRFLOW_WWW_USER_PASSWORD_CMD
    elif [[ -n "${_AIRFLOW_WWW_USER_PASSWORD:-}" ]]; then
        password="${_AIRFLOW_WWW_USER_PASSWORD}"
        unset _AIRFLOW_WWW_USER_PASSWORD
    fi
    if [[ -z ${password} ]]; then
        echo
        echo "ERROR! Airflow Admin password not set via _AIRFLOW_WWW_USER_PASSWORD or" \
            "_AIRFLOW_WWW_USER_PASSWORD_CMD variables!"
        echo
        exit 1
    fi
    airflow users create \
        --username "${_AIRFLOW_WWW_USER_USERNAME:-admin}" \
        --firstname "${_AIRFLOW_WWW_USER_FIRSTNAME:-Airflow}" \
        --lastname "${_AIRFLOW_WWW_USER_LASTNAME:-Admin}" \
        --email "${_AIRFLOW_WWW_USER_EMAIL:-airflowadmin@example.com}" \
        --role "${_AIRFLOW_WWW_USER_ROLE:-Admin}" \
        --password "${password}" || true
}

# The image is meant to run with gid 0 (any uid: OpenShift style); uid 50000 with another gid only warns.
check_gid() {
    [[ $(id -g) == "0" ]] && return 0
    if [[ $(id -u) == "50000" ]]; then
        >&2 echo
        >&2 echo "WARNING! You should run the image with GID (Group ID) set to 0"
        >&2 echo "         even if you use 'airflow' user (UID=50000)"
        >&2 echo
        >&2 echo " You started the image with UID=$(id -u) and GID=$(id -g)"
        >&2 echo
        return 0
    fi
    >&2 echo
    >&2 echo "ERROR! You should run the image with GID=0"
    >&2 echo
    >&2 echo " You started the image with UID=$(id -u) and GID=$(id -g)"
    >&2 echo
    >&2 echo "The image should always be run with GID (Group ID) set to 0 regardless of the UID used."
    exit 1
}

# An arbitrary uid without a passwd entry gets one (when /etc/passwd is writable) and HOME=/home/airflow.
add_passwd_entry_if_missing() {
    if ! whoami &>/dev/null; then
        if [[ -w /etc/passwd ]]; then
            local name="${USER_NAME:-default}"
            echo "${name}:x:$(id -u):0:${name} user:${AIRFLOW_USER_HOME_DIR}:/sbin/nologin" >>/etc/passwd
        fi
        export HOME="${AIRFLOW_USER_HOME_DIR}"
    fi
}

# As root, Python would not see the airflow user's packages: put them on PYTHONPATH.
pythonpath_for_root() {
    if [[ ${UID} == "0" ]]; then
        local version
        version="$(python --version | cut -d " " -f 2 | cut -d "." -f 1-2)"
        export PYTHONPATH="${AIRFLOW_USER_HOME_DIR}/.local/lib/python${version}/site-packages:${PYTHONPATH:-}"
        >&2 echo "The container is run as root user. For security, consider using a regular user account."
    fi
}

# pip must not install with --user once the container runs (PythonVirtualenvOperator venvs).
unset PIP_USER

check_gid

# Group-writable files and dirs: a volume written by one uid stays writable for another uid of group 0.
umask 0002

CONNECTION_CHECK_MAX_COUNT=${CONNECTION_CHECK_MAX_COUNT:=20}
readonly CONNECTION_CHECK_MAX_COUNT
CONNECTION_CHECK_SLEEP_TIME=${CONNECTION_CHECK_SLEEP_TIME:=3}
readonly CONNECTION_CHECK_SLEEP_TIME

add_passwd_entry_if_missing
pythonpath_for_root

# Every command that goes through this entrypoint (bash and python included) first waits for the metadata DB,
# unless CONNECTION_CHECK_MAX_COUNT is 0. A container `command` bypasses the entrypoint altogether.
if [[ ${CONNECTION_CHECK_MAX_COUNT} -gt 0 ]]; then
    retry_until_ok "airflow db check"
fi

if [[ -n "${_AIRFLOW_DB_UPGRADE:-}" || -n "${_AIRFLOW_DB_MIGRATE:-}" ]]; then
    airflow db migrate || true
fi
if [[ -n "${_AIRFLOW_DB_UPGRADE:-}" ]]; then
    >&2 echo "WARNING: Environment variable '_AIRFLOW_DB_UPGRADE' is deprecated" \
        "please use '_AIRFLOW_DB_MIGRATE' instead"
fi

if [[ -n "${_AIRFLOW_WWW_USER_CREATE:-}" ]]; then
    create_admin_user
fi

if [[ -n "${_PIP_ADDITIONAL_REQUIREMENTS:-}" ]]; then
    >&2 echo "ERROR! _PIP_ADDITIONAL_REQUIREMENTS is not supported by the local eksflow image (no runtime pip install):"
    >&2 echo "       add the packages to pyproject.toml and requirements.lock (make lock) and reinstall the venv."
    exit 1
fi

if [[ ${first_arg} == "bash" ]]; then
    shift
    exec /bin/bash "$@"
elif [[ ${first_arg} == "python" ]]; then
    shift
    exec python "$@"
fi

# `airflow scheduler` and `scheduler` mean the same.
if [[ ${first_arg} == "airflow" ]]; then
    first_arg="${2:-}"
    shift
fi

if [[ ${first_arg} =~ ^(scheduler|celery)$ && ${CONNECTION_CHECK_MAX_COUNT} -gt 0 ]]; then
    wait_for_celery_broker_if_celery
fi

exec airflow "$@"
