"""Command-line arguments the README promises, checked without a run."""

from __future__ import annotations

from typing import Any

import pytest

from lakescore import __version__
from lakescore.cli import main
from lakescore.errors import UsageError
from lakescore.runner import check_run_id


def test_version_prints_the_package_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"lakescore {__version__}"


def test_a_run_id_of_128_characters_is_taken_and_one_longer_is_refused() -> None:
    longest = "r" * 128
    assert check_run_id(longest) == longest
    with pytest.raises(UsageError, match="at most 128"):
        check_run_id(longest + "r")


def test_a_run_id_whose_staging_folder_name_is_too_long_is_refused() -> None:
    """Each `:` is written `%3A` in the staging folder's name, which may hold 255 characters."""
    too_long = "r" + ":" * 127  # 1 + 3 * 127 = 382 characters as a folder name
    with pytest.raises(UsageError, match="too long for a file system"):
        check_run_id(too_long)
    longest = "r" * 2 + ":" * 84  # 2 + 3 * 84 = 254
    assert check_run_id(longest) == longest
