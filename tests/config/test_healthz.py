from __future__ import annotations

from django.test import Client


def test_the_health_check_answers_by_ip_over_plain_http_in_production(settings, db: None) -> None:
    settings.ALLOWED_HOSTS = ["community.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.0.0.7:8000")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert client.get("/accounts/login/").status_code == 400  # other pages still check the host
