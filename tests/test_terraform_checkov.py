"""checkov over terraform/ (modules as called by envs/dev and envs/prod): zero failed checks, and every
deliberate exception suppressed inline with its reason."""

from __future__ import annotations

from pathlib import Path

from tests.scanners import failures, scan, skips_without_reason

TERRAFORM = Path(__file__).resolve().parents[1] / "terraform"


def test_checkov_finds_no_failed_check_in_terraform():
    report = scan("--directory", str(TERRAFORM), "--framework", "terraform")
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 200, f"checkov checked too little: {report['summary']}"
    failed = failures(report)
    assert not failed, "checkov failed checks (fix them, or suppress inline with a reason):\n" + "\n".join(failed)
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "").strip()) >= 20, skipped["check_id"]


def test_every_inline_suppression_says_why():
    assert not skips_without_reason(sorted(TERRAFORM.rglob("*.tf")))


def test_prod_turns_on_what_dev_suppressions_promise():
    """The RDS suppressions (Multi-AZ, deletion protection) rely on prod setting both."""
    tfvars = (TERRAFORM / "envs" / "prod" / "terraform.tfvars").read_text()
    settings = {
        key.strip(): value.strip() for key, value in (line.split("=", 1) for line in tfvars.splitlines() if "=" in line)
    }
    assert settings["multi_az"] == "true" and settings["deletion_protection"] == "true"
