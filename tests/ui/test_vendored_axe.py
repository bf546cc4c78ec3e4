"""The vendored axe-core is the file its README names, so an update cannot go unnoticed."""

from __future__ import annotations

import hashlib
import re

from tests.ui.axe import AXE_JS


def test_the_vendored_axe_core_is_the_version_and_file_its_readme_names() -> None:
    readme = (AXE_JS.parent / "README.md").read_text(encoding="utf-8")
    version = re.search(r"^# axe-core (\S+)", readme, re.MULTILINE)
    assert version is not None
    assert AXE_JS.read_text(encoding="utf-8").startswith(f"/*! axe v{version.group(1)}\n")
    assert hashlib.sha256(AXE_JS.read_bytes()).hexdigest() in readme
    assert (AXE_JS.parent / "LICENSE").read_text(encoding="utf-8").startswith("Mozilla Public License")
