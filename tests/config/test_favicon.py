"""The site's icon: pages link it, and /favicon.ico (which browsers and other clients ask for
on their own) is a permanent redirect to the same static file, so no page gets a 404 for it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from PIL import Image

from accounts.models import User

ICO = "img/favicon.ico"
SVG = "img/favicon.svg"


def test_favicon_ico_is_a_permanent_redirect_to_the_static_icon(client: Client, db: None) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == f"/static/{ICO}"
    assert client.head("/favicon.ico").status_code == 301
    assert client.post("/favicon.ico").status_code == 405


def test_the_static_icons_are_an_icon_file_and_an_svg() -> None:
    ico = finders.find(ICO)
    svg = finders.find(SVG)
    assert isinstance(ico, str)
    assert isinstance(svg, str)
    with Image.open(ico) as image:
        assert image.format == "ICO"
        assert {(16, 16), (32, 32)} <= set(image.info["sizes"])
    with open(svg, encoding="utf-8") as file:
        text = file.read()
    assert text.startswith("<svg ")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere


@pytest.mark.parametrize("path", ["/accounts/login/", "/does-not-exist/"])
def test_pages_link_the_icon(client: Client, db: None, path: str) -> None:
    html = client.get(path).content.decode()
    links = re.findall(r'<link rel="icon" href="([^"]+)"', html)
    assert links == [f"/static/{ICO}", f"/static/{SVG}"]


def test_a_dashboard_page_links_the_icon(client: Client, owner: User) -> None:
    client.force_login(owner)
    assert f'<link rel="icon" href="/static/{SVG}" type="image/svg+xml">' in client.get("/dashboard/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_browser_shows_the_icon_and_no_request_fails(page: Any, log_in: Any, owner: User) -> None:
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    log_in(page, owner)
    page.goto("/dashboard/")
    icon = page.request.get("/favicon.ico")  # follows the redirect, as a browser does
    assert icon.status == 200
    assert icon.headers["content-type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    assert icon.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    loaded = page.evaluate(
        """async () => {
            const link = document.querySelector('link[rel=icon][type="image/svg+xml"]');
            const response = await fetch(link.href);
            return [response.status, response.headers.get('content-type')];
        }"""
    )
    assert loaded == [200, "image/svg+xml"]
    assert failed == []
