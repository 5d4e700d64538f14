"""docker-compose.yml and the Dockerfile: the services, their commands, health and start order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.celery import Queue

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "migrate", "worker", "beat", "api", "flower"}
LONG_RUNNING = SERVICES - {"migrate"}
APP_SERVICES = ("worker", "beat", "api", "flower")
CELERY_SERVICES = ("worker", "beat", "flower")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def command_of(compose: dict[str, Any], service: str) -> str:
    command = compose["services"][service]["command"]
    return " ".join(command) if isinstance(command, list) else str(command)


def test_services_are_exactly_the_design_set(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_every_long_running_service_has_a_healthcheck(
    compose: dict[str, Any], service: str
) -> None:
    healthcheck = compose["services"][service].get("healthcheck")
    assert healthcheck, f"{service} has no healthcheck"
    assert healthcheck["test"], f"{service}'s healthcheck has no test"
    assert not healthcheck.get("disable", False)


def test_migrate_runs_the_upgrade_once(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert command_of(compose, "migrate") == "callsync db upgrade"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", CELERY_SERVICES)
def test_celery_services_use_the_app(compose: dict[str, Any], service: str) -> None:
    assert command_of(compose, service).startswith(f"celery -A app {service}")


def test_worker_consumes_every_queue(compose: dict[str, Any]) -> None:
    command = compose["services"]["worker"]["command"]
    queues = command[command.index("-Q") + 1]
    assert set(queues.split(",")) == {queue.value for queue in Queue}


def test_api_serves_on_port_8000(compose: dict[str, Any]) -> None:
    assert command_of(compose, "api").startswith("callsync api")
    assert "8000:8000" in compose["services"]["api"]["ports"]
    assert "/healthz" in " ".join(compose["services"]["api"]["healthcheck"]["test"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_migrations_and_healthy_stores(
    compose: dict[str, Any], service: str
) -> None:
    depends_on = compose["services"][service]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["migrate", *APP_SERVICES])
def test_app_services_share_the_environment_anchor(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    own = {"FLOWER_BASIC_AUTH"} if service == "flower" else set()
    assert {k: v for k, v in environment.items() if k not in own} == compose["x-callsync-env"]


def test_flower_requires_its_login_from_env_and_not_on_its_command_line(
    compose: dict[str, Any],
) -> None:
    login = compose["services"]["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    assert login.startswith("${FLOWER_BASIC_AUTH:?")
    assert "basic" not in command_of(compose, "flower").lower()
    assert "FLOWER_BASIC_AUTH" not in compose["x-callsync-env"]  # the workers need no login
    # Flower answers /healthcheck without a login, so the probe still works.
    assert "/healthcheck" in " ".join(compose["services"]["flower"]["healthcheck"]["test"])


def published(compose: dict[str, Any], service: str) -> list[tuple[str, str]]:
    """(host address, host port) of each port a service publishes; "" is every address."""
    spots = []
    for port in compose["services"][service].get("ports", []):
        host, _, _container = str(port).rpartition(":")
        address, _, host_port = host.rpartition(":")
        spots.append((address, host_port))
    return spots


def test_only_the_api_is_published_to_the_world(compose: dict[str, Any]) -> None:
    world = {
        service: spots
        for service in compose["services"]
        if (spots := [spot for spot in published(compose, service) if spot[0] != "127.0.0.1"])
    }
    assert world == {"api": [("", "8000")]}
    assert published(compose, "flower") == [("127.0.0.1", "5555")]


def test_the_optional_exposure_settings_pass_through_unset_by_default(
    compose: dict[str, Any],
) -> None:
    env = compose["x-callsync-env"]
    assert env["CORS_ALLOWED_ORIGINS"] == "${CORS_ALLOWED_ORIGINS:-}"
    assert env["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"


def test_every_variable_compose_requires_is_in_env_example_and_written_by_bootstrap() -> None:
    required = set(
        re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    )
    assert "FLOWER_BASIC_AUTH" in required
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    for name in required:
        assert re.search(rf"^{name}=", example, re.MULTILINE), f"{name} not in .env.example"
        assert f'echo "{name}=' in bootstrap, f"scripts/bootstrap.sh does not write {name}"


def test_environment_anchor_points_at_the_compose_stores(compose: dict[str, Any]) -> None:
    env = compose["x-callsync-env"]
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    for secret in ("ENCRYPTION_KEY", "JWT_SECRET", "SERVICE_TOKEN"):
        assert env[secret].startswith(f"${{{secret}:?"), f"{secret} must be required from .env"


def test_dockerfile_copies_what_the_app_loads_beside_the_package() -> None:
    lines = [
        line.split()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ")
    ]
    copied = {Path(source).as_posix() for words in lines for source in words[1:-1]}
    assert {"app", "alembic", "alembic.ini", "celerybeat-schedule.py"} <= copied
