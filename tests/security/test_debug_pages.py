"""With DEBUG on (``make run``), a request Django refuses as malformed is still a 4xx: the
debug error page must not fail while it reads the same malformed body again."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

LATIN_1_FORM = "application/x-www-form-urlencoded; charset=latin-1"


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("path", "status"), [("/accounts/login/", 400), ("/nonexistent/", 404)])
def test_a_form_post_in_another_charset_is_a_client_error(debug, path, status) -> None:
    client = Client(raise_request_exception=False)
    client.get("/accounts/login/")  # the csrftoken cookie, which makes the CSRF check read the form
    assert "csrftoken" in client.cookies
    with override_settings(DEBUG=debug):
        response = client.generic("POST", path, b"a=b", content_type=LATIN_1_FORM)
    assert response.status_code == status
