"""The notebook's run id: blank means a new one, but an empty variable is a mistake."""

from __future__ import annotations

from typing import Any

import pytest

from lakescore.notebook import run_id_widget


class Widgets:
    def __init__(self, value: str) -> None:
        self.value = value

    def text(self, name: str, default: str) -> None:
        pass

    def get(self, name: str) -> str:
        return self.value


class DbUtils:
    def __init__(self, value: str) -> None:
        self.widgets = Widgets(value)


@pytest.mark.parametrize(
    ("dbutils", "env", "expected"),
    [
        (None, None, None),  # not given: a new run id
        (None, "nightly-1", "nightly-1"),
        (None, "", ""),  # set but empty (an unset $RUN_ID): refused by the run
        (DbUtils(""), "", None),  # a blank widget: a new run id
        (DbUtils("job-7"), None, "job-7"),
    ],
)
def test_the_run_id_widget(
    monkeypatch: pytest.MonkeyPatch, dbutils: Any, env: str | None, expected: str | None
) -> None:
    if env is None:
        monkeypatch.delenv("LAKESCORE_RUN_ID", raising=False)
    else:
        monkeypatch.setenv("LAKESCORE_RUN_ID", env)
    assert run_id_widget(dbutils) == expected
