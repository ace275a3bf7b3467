"""Deployment configuration: docker-compose.yml, .env.example and the settings' production guards.

These tests read files and run short subprocesses; they need no database fixtures.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "worker-priority", "beat")
PRODUCTION_SECRET_KEY = "tEst-only-Secret-kEy-for-the-deployment-checks-7f3c9a1e5b2d8046"


def _names(pattern: str, path: Path) -> set[str]:
    return set(re.findall(pattern, path.read_text()))


def settings_variables() -> set[str]:
    """Names settings.py reads: ``env("NAME"`` and ``env.<type>("NAME"``."""
    return _names(
        r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", ROOT / "trialhub/settings.py"
    )


def embedded_variables() -> set[str]:
    """Names trialhub/embedded.py reads: ``os.environ.get("NAME"`` and ``os.environ["NAME"]``."""
    return _names(
        r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""",
        ROOT / "trialhub/embedded.py",
    )


def known_variables() -> set[str]:
    return settings_variables() | embedded_variables()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def service_command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def service_environment(service: dict) -> dict:
    environment = service.get("environment", {})
    if isinstance(environment, list):  # the KEY=value form
        environment = dict(item.split("=", 1) for item in environment)
    return environment


def test_the_scan_finds_the_settings_variables():
    # Guards the regular expressions: if they stop matching, the checks below prove nothing.
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"} <= (
        settings_variables()
    )
    assert {"CELERY_BROKER_URL", "EMAIL_URL", "DEFAULT_FROM_EMAIL"} <= settings_variables()
    assert {"DATABASE_URL", "TRIALHUB_DATA_DIR"} <= embedded_variables()


def test_compose_describes_the_production_stack(compose):
    services = compose["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    assert "gunicorn trialhub.wsgi" in service_command(services["web"])

    worker = service_command(services["worker"])
    assert re.search(r"\bcelery\b.*\bworker\b", worker)
    queues = re.search(r"-Q\s+(\S+)", worker).group(1).split(",")
    assert {"priority", "routine", "default"} <= set(queues)
    # Key and critical traffic also has a worker of its own.
    priority = service_command(services["worker-priority"])
    assert re.search(r"-Q\s+priority(\s|$)", priority), priority

    assert re.search(r"\bcelery\b.*\bbeat\b", service_command(services["beat"]))
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_get_the_production_environment(compose, name):
    environment = service_environment(compose["services"][name])
    assert {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"} <= set(environment)
    assert {"CELERY_BROKER_URL", "REDIS_URL"} & set(environment)
    assert str(environment["DEBUG"]).lower() == "false"
    unknown = set(environment) - known_variables()
    assert not unknown, f"{name} sets variables the settings never read: {sorted(unknown)}"


def test_env_example_lists_every_variable():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    missing = known_variables() - listed
    assert not missing, f".env.example does not list {sorted(missing)}"
    unknown = listed - known_variables()
    assert not unknown, f".env.example lists variables nothing reads: {sorted(unknown)}"


def _run(args: list[str], **variables: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    environment["DJANGO_SETTINGS_MODULE"] = "trialhub.settings"
    environment.update(variables)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def _setup(**variables: str) -> subprocess.CompletedProcess:
    return _run(["-c", "import django; django.setup()"], **variables)


def test_production_refuses_to_start_without_secret_key():
    result = _setup(DEBUG="false", ALLOWED_HOSTS="trialhub.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _setup(DEBUG="false", SECRET_KEY=PRODUCTION_SECRET_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_settings_refuse_a_database_other_than_postgresql():
    result = _setup(DATABASE_URL="sqlite:///x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_settings_pass_the_deployment_checks():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="false",
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        ALLOWED_HOSTS="trialhub.example.org",
    )
    assert result.returncode == 0, result.stderr
