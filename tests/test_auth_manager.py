"""The AWS auth manager (production login): its login routes import in the locked environment, and the chart
gives it the public URL its SAML callback is built from. Its Verified Permissions rights are checked on the
applied Terraform (test_terraform_apply.py): the emulator serves no Verified Permissions and no SAML IdP, so
no api-server start-up with it is tested here."""

from __future__ import annotations

import configparser
import subprocess
import sys

from tests.helm import VALUE_FILES, helm, render


def test_the_login_routes_of_the_aws_auth_manager_import_in_the_locked_environment():
    """The api-server imports them at start-up; without python3-saml (the provider's extra) it crashes."""
    module = "airflow.providers.amazon.aws.auth_manager.routes.login"
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _api_section(docs) -> dict:
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("airflow-config")]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(configmap["data"]["airflow.cfg"])
    return dict(parser["api"]) if parser.has_section("api") else {}


def test_the_saml_login_gets_the_public_url_of_the_ui():
    assert _api_section(render())["base_url"] == "https://airflow-dev.example.com"  # auth.aws.baseUrl
    assert _api_section(render(base=VALUE_FILES["prod"]))["base_url"] == "https://airflow.internal.example.com"


def test_without_a_public_url_the_aws_auth_manager_is_refused_naming_the_value():
    failed = helm(
        "template",
        "eksflow",
        str(VALUE_FILES["dev"].parent),
        "-f",
        str(VALUE_FILES["dev"]),
        "--set",
        "auth.aws.baseUrl=",
        check=False,
    )
    assert failed.returncode != 0
    assert "auth.aws.baseUrl is empty and there is no ingress.host" in failed.stderr
