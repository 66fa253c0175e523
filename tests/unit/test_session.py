"""The Java check gives one clear sentence before Spark would fail deep inside its gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakescore.errors import EnvironmentProblem
from lakescore.session import check_java


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="needs Java 17 or newer"):
        check_java()


def test_old_java_is_named_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match=r'Java 17 or newer.*"11\.0\.22"'):
        check_java()


def test_this_machines_java_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    check_java()
