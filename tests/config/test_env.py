from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_optional, env_str, secret_key

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3y-" + "aZ9x" * 15


def test_env_bool_reads_the_usual_spellings() -> None:
    for raw, expected in [("1", True), ("TRUE", True), ("yes", True), ("off", False), ("0", False), ("", False)]:
        assert env_bool("X", not expected, environ={"X": raw}) is expected
    assert env_bool("X", True, environ={}) is True


def test_env_bool_refuses_anything_else() -> None:
    with pytest.raises(ImproperlyConfigured, match="X must be a boolean"):
        env_bool("X", False, environ={"X": "maybe"})


def test_env_int_refuses_text_and_out_of_range_values() -> None:
    assert env_int("N", 5, environ={"N": " 42 "}) == 42
    assert env_int("N", 5, environ={}) == 5
    with pytest.raises(ImproperlyConfigured, match="N must be a whole number"):
        env_int("N", 5, environ={"N": "4.5"})
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 5, minimum=1, environ={"N": "0"})
    with pytest.raises(ImproperlyConfigured, match="at most 10"):
        env_int("N", 5, maximum=10, environ={"N": "11"})


def test_env_str_requires_a_value_without_a_default() -> None:
    with pytest.raises(ImproperlyConfigured, match="REQUIRED_THING is required"):
        env_str("REQUIRED_THING", environ={})
    assert env_str("A", "fallback", environ={"A": ""}) == "fallback"


def test_env_list_splits_on_commas() -> None:
    assert env_list("H", [], environ={"H": "a.example, b.example,,"}) == ["a.example", "b.example"]


def test_values_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert env_optional("TOKEN", environ={"TOKEN_FILE": str(secret)}) == "from-a-file"
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_optional("TOKEN", environ={"TOKEN_FILE": str(tmp_path / "missing")})


def test_secret_key_is_required_and_strong_without_debug() -> None:
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is required"):
        secret_key(debug=False, environ={})
    with pytest.raises(ImproperlyConfigured, match="insecure"):
        secret_key(debug=False, environ={"SECRET_KEY": "short"})
    with pytest.raises(ImproperlyConfigured, match="insecure"):
        secret_key(debug=False, environ={"SECRET_KEY": "django-insecure-" + "x" * 60})
    assert secret_key(debug=False, environ={"SECRET_KEY": STRONG_KEY}) == STRONG_KEY
    assert secret_key(debug=True, environ={})  # development gets a stand-in


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    unset = {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_process_refuses_to_start_without_a_secret_key_in_production(tmp_path: Path) -> None:
    result = _manage("check", DEBUG="false", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_a_bad_value_stops_the_process_with_the_variables_name(tmp_path: Path) -> None:
    result = _manage("check", DEBUG="sometimes", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "community.example.com",
    "SITE_URL": "https://community.example.com",
    "STRIPE_SECRET_KEY": "sk_live_" + "r" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 32,
    "STRIPE_CONNECT_CLIENT_ID": "ca_" + "c" * 32,
}
STRIPE_VARIABLES = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_CLIENT_ID")


def _production(
    tmp_path: Path, *args: str, without: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    # Variables the test process may carry must not leak into the child: clear them explicitly.
    unset = dict.fromkeys(
        (*without, "STRIPE_API_BASE", "STRIPE_SANDBOX_ALLOWED", "BUILD_STEP", "STRIPE_PUBLISHABLE_KEY"), ""
    )
    variables = {**PRODUCTION, **unset, "DATA_DIR": str(tmp_path), **env}
    return _manage(*args, **variables)


def test_check_deploy_reports_no_warnings_with_production_settings(tmp_path: Path) -> None:
    result = _production(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("name", STRIPE_VARIABLES)
def test_production_refuses_to_start_without_each_stripe_secret(tmp_path: Path, name: str) -> None:
    result = _production(tmp_path, "check", without=(name,))
    assert result.returncode != 0
    assert f"{name} is required when DEBUG is off" in result.stderr


@pytest.mark.parametrize("name", [*STRIPE_VARIABLES, "STRIPE_PUBLISHABLE_KEY"])
def test_production_refuses_the_sandboxs_published_keys(tmp_path: Path, name: str) -> None:
    from config.settings import SANDBOX_STRIPE_CREDENTIALS

    result = _production(tmp_path, "check", **{name: SANDBOX_STRIPE_CREDENTIALS[name]})
    assert result.returncode != 0
    assert f"{name} is the offline Stripe sandbox's published value" in result.stderr


def test_a_build_step_loads_without_stripe_secrets_but_cannot_serve(tmp_path: Path) -> None:
    assert _production(tmp_path, "check", without=STRIPE_VARIABLES, BUILD_STEP="1").returncode == 0
    serve = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env={
            **os.environ,
            **PRODUCTION,
            "DATA_DIR": str(tmp_path),
            "BUILD_STEP": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode != 0
    assert "BUILD_STEP is set" in serve.stderr


def test_check_deploy_names_the_sandbox_keys_and_an_http_site_url(tmp_path: Path) -> None:
    """A deployment allowed to run on the sandbox still hears about it from check --deploy."""
    result = _production(
        tmp_path,
        "check",
        "--deploy",
        without=STRIPE_VARIABLES,
        STRIPE_SANDBOX_ALLOWED="1",
        STRIPE_API_BASE="http://127.0.0.1:12111",
        SITE_URL="http://community.example.com",
    )
    report = result.stdout + result.stderr
    for check_id in ("billing.W001", "billing.W002", "billing.W003", "billing.W004", "accounts.W001"):
        assert check_id in report, report
