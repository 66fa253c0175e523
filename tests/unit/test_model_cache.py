"""The per-worker model cache: which model's code a reused Python worker sets up, and when."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

from lakescore import model_cache


def test_only_a_switch_of_model_scans_the_workers_modules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The scan of every loaded module (about 50 ms) ran on every task of a run; the model's
    own code is already in place while the worker keeps scoring it."""
    scans: list[str | None] = []
    scan = model_cache._forget_other_models_code

    def counted(code: str | None) -> None:
        scans.append(code)
        scan(code)

    loaded = {"a": object(), "b": object()}  # two models already loaded in this worker
    monkeypatch.setattr(model_cache, "_forget_other_models_code", counted)
    monkeypatch.setattr(model_cache, "_models", OrderedDict(loaded))
    monkeypatch.setattr(model_cache, "_code", {})
    monkeypatch.setattr(model_cache, "_current", None)
    monkeypatch.setattr(model_cache, "_models_folder", lambda: str(tmp_path))

    used = [model_cache.get_or_load(name) for name in ("a", "a", "a", "b", "b", "a")]

    assert used == [loaded[name] for name in ("a", "a", "a", "b", "b", "a")]
    assert len(scans) == 3  # a, then b, then a again
