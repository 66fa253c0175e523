"""A bug (an exception lakescore did not expect) still ends in one sentence, and in the JSON a
scheduler parses; --verbose adds its traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lakescore import cli


@pytest.mark.parametrize("verbose", [False, True])
def test_an_unexpected_error_gives_the_json_with_or_without_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, verbose: bool
) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_dispatch", broken)
    monkeypatch.setattr(cli, "_configure_logging", lambda verbose: None)  # process-wide
    argv = ["runs", "list", "deployment.yaml", "--json", *(["--verbose"] if verbose else [])]

    code = cli.main(argv)

    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert code == shown["exit_code"] == 1
    assert shown["error"].startswith("unexpected RuntimeError: a bug")
    assert ("Traceback" in captured.err) == verbose
    assert ("rerun with --verbose" in shown["error"]) != verbose


def test_the_verbose_traceback_of_a_bug_shows_no_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def broken(args: Any) -> int:
        try:
            raise ConnectionError("http://alice:s3cr3t@registry:5000 refused")
        except ConnectionError as exc:
            raise RuntimeError("a bug") from exc

    monkeypatch.setattr(cli, "_dispatch", broken)
    monkeypatch.setattr(cli, "_configure_logging", lambda verbose: None)  # process-wide

    assert cli.main(["runs", "list", "deployment.yaml", "--verbose"]) == 1

    err = capsys.readouterr().err
    assert "ConnectionError: http://***@registry:5000 refused" in err
    assert "s3cr3t" not in err
