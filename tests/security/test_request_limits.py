"""Request bodies are refused by their Content-Length before anything reads them: 1 MB for
everything, 12 MB for staff image uploads (the offer and hub editors), and nothing without a
Content-Length at all."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, override_settings
from django.test.client import MULTIPART_CONTENT

from tests.memberships.test_editor import CREATE_URL, form_data

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


class Unread(io.BytesIO):
    """A request body that records whether anybody read it."""

    def __init__(self, size: int) -> None:
        super().__init__(b"a" * 16)
        self.size = size
        self.reads = 0

    def read(self, *args: Any) -> bytes:
        self.reads += 1
        return super().read(*args)

    readline = read


def _claim(client: Client, path: str, size: int, content_type: str = MULTIPART_CONTENT) -> tuple[Any, Unread]:
    body = Unread(size)
    extra = {"CONTENT_LENGTH": str(size), "CONTENT_TYPE": content_type, "wsgi.input": body}
    return client.generic("POST", path, **extra), body


@pytest.fixture
def staff(client: Client, owner) -> Client:
    client.force_login(owner)
    return client


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/accounts/login/", "/stripe/webhook/", "/offers/any/checkout/", "/nowhere/"])
def test_an_anonymous_body_over_a_megabyte_is_refused_unread(path, debug) -> None:
    client = Client(enforce_csrf_checks=True)  # as a browser's: the CSRF check would parse the form
    client.get("/accounts/login/")  # with the CSRF cookie, which makes it read the body
    with override_settings(DEBUG=debug):
        response, body = _claim(client, path, 30 * MB)
    assert response.status_code == 413
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Request too large: this page accepts at most 1 MB" in response.content.decode()
    assert body.reads == 0


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_the_upload_allowance_is_for_staff_only(client, member, who) -> None:
    client.get("/accounts/login/")
    if who == "member":
        client.force_login(member)
    response, body = _claim(client, CREATE_URL, 5 * MB)
    assert response.status_code == 413
    assert body.reads == 0


def test_staff_may_upload_up_to_twelve_megabytes_to_the_editors(staff) -> None:
    for path in (CREATE_URL, "/dashboard/community/hubs/1/"):
        response, body = _claim(staff, path, 13 * MB)
        assert response.status_code == 413, path
        assert "at most 12 MB" in response.content.decode()
        assert body.reads == 0
    data = form_data()
    data["thumbnail"] = io.BytesIO(b"\x00" * (5 * MB))  # passes the cap; the form then refuses it
    data["thumbnail"].name = "big.png"
    response = staff.post(CREATE_URL, data)
    assert response.status_code == 400
    assert "thumbnail" in response.context["form"].errors


def test_staff_get_no_allowance_elsewhere(staff) -> None:
    response, _ = _claim(staff, "/dashboard/users/1/", 2 * MB)
    assert response.status_code == 413


def test_a_body_within_the_cap_goes_through(client) -> None:
    response = client.post("/accounts/login/", {"username": "x@example.com", "password": "p" * (512 * 1024)})
    assert response.status_code == 200  # the form says the login is wrong


@override_settings(REQUEST_BODY_MAX_BYTES=64 * 1024)
def test_the_cap_follows_the_setting(client) -> None:
    response, _ = _claim(client, "/accounts/login/", 65 * 1024)
    assert response.status_code == 413
    assert "at most 64 KB" in response.content.decode()


def test_a_content_length_that_is_not_a_number_is_a_400(client) -> None:
    for value in ("-1", "1e9", "12 ", "x"):
        response = client.generic("POST", "/accounts/login/", CONTENT_LENGTH=value, **{"wsgi.input": Unread(0)})
        assert response.status_code == 400, value


@pytest.mark.django_db  # the refused delivery is noted (tests/billing/test_checkout_tests.py)
def test_a_chunked_body_without_a_length_is_never_read() -> None:
    """gunicorn hands over a chunked body with no CONTENT_LENGTH; Django reads none of it."""
    body = Unread(30 * MB)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/stripe/webhook/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": body,
        "wsgi.url_scheme": "http",
        "wsgi.input_terminated": True,
    }
    statuses: list[str] = []
    WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["400 Bad Request"]  # an empty body has no valid signature
    assert body.reads == 0


def test_nothing_before_the_limit_reads_the_body() -> None:
    """Only lazy session and user objects come first; the CSRF check reads in process_view."""
    stack = settings.MIDDLEWARE
    position = stack.index("config.middleware.RequestLimitMiddleware")
    assert stack.index("django.contrib.auth.middleware.AuthenticationMiddleware") < position
    assert set(stack[:position]) <= {
        "config.middleware.HealthCheckMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    }


def test_django_keeps_its_own_limits_behind_the_middleware() -> None:
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.REQUEST_BODY_MAX_BYTES
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 1000
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 10
    staff_paths = settings.REQUEST_BODY_UPLOAD_PATHS
    assert all(path.startswith("/dashboard/") for path in staff_paths)


def test_too_many_fields_is_a_400_not_a_500(client) -> None:
    body = "&".join(f"f{i}=1" for i in range(1100))
    client.raise_request_exception = False
    response = client.generic("POST", "/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
