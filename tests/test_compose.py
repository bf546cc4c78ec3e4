"""compose.yaml: every process restarted when it exits, the migrations once, secrets from .env.

No Docker engine runs where the tests run, so these read the file as Compose would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_ROLES = ["migrate", "web", "worker", "beat"]


def test_it_runs_every_role_of_the_image_beside_postgresql_and_redis() -> None:
    assert set(SERVICES) == {"postgres", "redis", *APP_ROLES}
    images = {SERVICES[name]["image"] for name in APP_ROLES}
    assert len(images) == 1  # one image for every role
    assert all(SERVICES[name]["build"] == "." for name in APP_ROLES)


def test_every_long_running_process_is_restarted_when_it_exits() -> None:
    for name in ["postgres", "redis", "web", "worker", "beat"]:
        assert SERVICES[name]["restart"] == "unless-stopped", name
    assert SERVICES["migrate"]["restart"] == "no"


def test_the_migrations_run_once_before_the_processes_that_need_them() -> None:
    assert SERVICES["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ["web", "worker", "beat"]:
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_the_worker_is_healthy_while_it_answers_a_ping_addressed_to_itself() -> None:
    worker = SERVICES["worker"]
    assert worker["command"][:4] == ["celery", "-A", "config", "worker"]
    kind, command = worker["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # $$ is Compose's escape: the container's shell expands $HOSTNAME, Celery's default node name.
    assert re.fullmatch(r"celery -A config inspect ping --timeout \d+ -d celery@\$\$HOSTNAME", command)


def test_a_stopping_worker_has_time_to_finish_its_longest_task() -> None:
    grace = SERVICES["worker"]["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) > settings.CELERY_TASK_TIME_LIMIT


def test_containers_that_serve_no_web_page_do_not_use_the_images_web_health_check() -> None:
    assert SERVICES["beat"]["healthcheck"] == {"disable": True}
    assert SERVICES["migrate"]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in SERVICES["web"]  # the Dockerfile's check of /healthz


def test_redis_keeps_the_queue_across_a_restart_and_never_evicts_it() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert SERVICES["redis"]["volumes"] == ["redis:/data"]


def test_secrets_come_from_the_operators_env_file_which_never_enters_the_repository_or_the_image() -> None:
    for name in APP_ROLES:
        assert SERVICES[name]["env_file"] == ".env", name
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and line[0] != "#"
    )
    for required in ["SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_CLIENT_ID"]:
        assert example[required] == "", required  # named for the operator, never filled in here
    assert example["POSTGRES_PASSWORD"] == ""
