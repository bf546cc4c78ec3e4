"""AFFILIATE_COOKIE_DAYS is read from the environment and refused when it makes no sense."""

from __future__ import annotations

import pytest

from tests.config.test_env import _manage


@pytest.mark.parametrize(("value", "words"), [("0", "at least 1"), ("400", "at most 365"), ("a month", "whole number")])
def test_a_bad_cookie_lifetime_stops_the_process_with_the_variables_name(tmp_path, value, words) -> None:
    result = _manage("check", DEBUG="true", DATA_DIR=str(tmp_path), AFFILIATE_COOKIE_DAYS=value)
    assert result.returncode != 0
    assert "AFFILIATE_COOKIE_DAYS" in result.stderr
    assert words in result.stderr


def test_the_cookie_lifetime_comes_from_the_environment(tmp_path) -> None:
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.AFFILIATE_COOKIE_DAYS)",
        DEBUG="true",
        DATA_DIR=str(tmp_path),
        AFFILIATE_COOKIE_DAYS="45",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "45"
