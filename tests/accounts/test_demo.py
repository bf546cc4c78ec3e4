from __future__ import annotations

from django.core.management import call_command

from accounts.models import User


def test_the_demo_data_command_is_idempotent(db: None, capsys) -> None:
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    assert "creator@example.com" in first
    assert User.objects.filter(email="creator@example.com", is_staff=True).count() == 1
    assert User.objects.filter(email="member@example.com", is_staff=False).count() == 1
    assert User.objects.get(email="creator@example.com").check_password("creator-demo-pass")
