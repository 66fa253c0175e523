"""Every notebook in notebooks/ runs top to bottom outside Databricks, with a stand-in for
`dbutils.widgets`, after a scoring run has left something to explore; each prints the counts
that the tables hold."""

from __future__ import annotations

import logging
import runpy
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable as RustDeltaTable
from pyspark.errors import AnalysisException

from lakescore.catalog import resolve_tables
from lakescore.config import Deployment, load_deployment
from lakescore.errors import DeploymentError
from lakescore.runner import score

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


class Widgets:
    """Stand-in for `dbutils.widgets`: `text` declares a widget and its default, `get` reads the
    value the job set (or the default); reading an undeclared widget fails, as on Databricks."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.declared: dict[str, str] = {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.declared[name] = default

    def get(self, name: str) -> str:
        if name not in self.declared:
            raise ValueError(f"No input widget named {name} is defined")
        return self.values.get(name, self.declared[name])


class DBUtils:
    """Just enough of `dbutils` for lakescore's notebooks."""

    def __init__(self, widgets: Widgets) -> None:
        self.widgets = widgets


def read_delta(path: str) -> pd.DataFrame:
    return RustDeltaTable(path).to_pyarrow_table().to_pandas()


def run_notebook(notebook: Path, widgets: dict[str, str], capsys: Any) -> tuple[str, Widgets]:
    """Execute the notebook as one script with `dbutils` in its globals; its stdout."""
    stub = Widgets(widgets)
    capsys.readouterr()
    runpy.run_path(str(notebook), init_globals={"dbutils": DBUtils(stub)}, run_name="__main__")
    return capsys.readouterr().out, stub


def n(value: int) -> str:
    return f"{value:,}"


def expect_score(out: str, deployment: Deployment, explored: str, run_id: str) -> None:
    """score.py scores the deployment under the widget's run id and prints that run's counts."""
    run = read_delta(deployment.runs.path).set_index("run_id").loc[run_id]
    assert run["status"] == "succeeded"
    assert (
        f"run {run_id}: succeeded, read {run['rows_read']}, scored {run['rows_scored']}, "
        f"quarantined {run['rows_quarantined']}"
    ) in out
    assert "usage_non_negative" in out  # the quarantine reasons of that run


def expect_explore(out: str, deployment: Deployment, explored: str, run_id: str) -> None:
    """explore_run.py shows the record, quarantine reasons, failed files and model versions."""
    run = read_delta(deployment.runs.path).set_index("run_id").loc[explored]
    quarantine = read_delta(deployment.quarantine.path)
    quarantine = quarantine[quarantine["_run_id"] == explored]
    errors = sum(len(e) for e in quarantine["_errors"])
    predictions = read_delta(deployment.output.path)
    predictions = predictions[predictions["_run_id"] == explored]

    assert f"run {explored} of {run['deployment']}: succeeded" in out
    assert (
        f"rows         read {n(run['rows_read'])}, scored {n(run['rows_scored'])}, "
        f"quarantined {n(run['rows_quarantined'])} (reconciles)"
    ) in out
    assert f"files        read {n(run['files_read'])}, failed 0" in out
    assert f"quarantined rows of run {explored}: {n(len(quarantine))}, with {n(errors)}" in out
    rules = {e["rule"] for errs in quarantine["_errors"] for e in errs}
    assert rules
    for rule in rules:
        assert rule in out
    assert f"input files of run {explored} that could not be read: 0" in out
    assert f"predictions of run {explored}: {n(len(predictions))}, by model version" in out
    assert run["model_uri"] in out


Expectation = Callable[[str, Deployment, str, str], None]
# Each notebook: the run id its widget gets, and what it must print. A new notebook needs a line.
EXPECTED: dict[str, tuple[str, Expectation]] = {
    "score.py": ("from-notebook", expect_score),
    "explore_run.py": ("", expect_explore),
}


def test_every_notebook_has_expectations() -> None:
    assert NOTEBOOKS, "no notebooks found"
    assert sorted(p.name for p in NOTEBOOKS) == sorted(EXPECTED)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_with_dbutils_widgets(
    notebook: Path, lakehouse: Any, spark: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LAKESCORE_DEPLOYMENT", "LAKESCORE_RUN_ID"):
        monkeypatch.delenv(name, raising=False)  # the widgets, not the environment, must count
    run_id, expect = EXPECTED[notebook.name]
    deployment_file = lakehouse(rows=240, files=2)
    deployment = load_deployment(deployment_file)
    score(spark, deployment, "before-notebook")

    out, widgets = run_notebook(
        notebook, {"deployment": str(deployment_file), "run_id": run_id}, capsys
    )

    assert set(widgets.declared) == {"deployment", "run_id"}
    expect(out, deployment, "before-notebook", run_id)


def test_explore_run_defaults_to_the_newest_run_and_honours_the_widget(
    lakehouse: Any, spark: Any, capsys: Any
) -> None:
    deployment_file = lakehouse(rows=120, files=2)
    deployment = load_deployment(deployment_file)
    score(spark, deployment, "older")
    score(spark, deployment, "newer")
    notebook = ROOT / "notebooks" / "explore_run.py"

    newest, _ = run_notebook(notebook, {"deployment": str(deployment_file)}, capsys)
    named, _ = run_notebook(
        notebook, {"deployment": str(deployment_file), "run_id": "older"}, capsys
    )

    expect_explore(newest, deployment, "newer", "")
    expect_explore(named, deployment, "older", "older")
    assert "run older" not in newest and "run newer" not in named


def test_explore_run_keeps_to_its_deployments_runs_in_a_shared_runs_table(
    lakehouse: Any, spark: Any, capsys: Any, tmp_path: Path
) -> None:
    """Another deployment's newer run in the same runs table is neither the default nor shown:
    its rows are in that deployment's tables, not in the ones this file names."""
    from lakehouses import sharing_runs_table

    deployment_file = lakehouse(rows=120, files=2)
    deployment = load_deployment(deployment_file)
    score(spark, deployment, "ours")
    score(spark, load_deployment(sharing_runs_table(deployment_file, tmp_path)), "theirs")
    notebook = ROOT / "notebooks" / "explore_run.py"

    newest, _ = run_notebook(notebook, {"deployment": str(deployment_file)}, capsys)
    expect_explore(newest, deployment, "ours", "")
    with pytest.raises(ValueError, match="Run theirs of deployment meter-risk-test is not in"):
        run_notebook(notebook, {"deployment": str(deployment_file), "run_id": "theirs"}, capsys)


def test_notebooks_find_catalog_tables_through_the_catalog(
    lakehouse: Any, spark: Any, capsys: Any, tmp_path: Path
) -> None:
    """A deployment of `table: schema.name` tables gives no paths: both notebooks look the
    tables up in the session's catalog, as `lakescore runs` does."""
    schema = f"notebooks_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE SCHEMA {schema} LOCATION '{tmp_path / 'catalog'}'")
    deployment_file = lakehouse(rows=120, files=2)
    data = yaml.safe_load(deployment_file.read_text())
    for key in ("output", "quarantine", "runs"):
        data[key] = {"table": f"{schema}.{key}"}
    deployment_file.write_text(yaml.safe_dump(data))
    widgets = {"deployment": str(deployment_file)}

    scored, _ = run_notebook(ROOT / "notebooks" / "score.py", {**widgets, "run_id": "t"}, capsys)
    explored, _ = run_notebook(ROOT / "notebooks" / "explore_run.py", widgets, capsys)

    resolved = resolve_tables(spark, load_deployment(deployment_file), create=False)
    assert str(tmp_path / "catalog") in resolved.runs.path
    expect_score(scored, resolved, "t", "t")
    expect_explore(explored, resolved, "t", "")


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failed_run_in_a_cell_shows_its_error_without_sparks_query_context_log(
    lakehouse: Any, spark: Any
) -> None:
    """PySpark logs an analysis error as a multi-KB JSON record with a stack before raising it.
    A rule naming a missing column is a one-sentence error in a notebook cell too; once the run
    has ended, the session logs as it did before."""
    from pyspark.logger import PySparkLogger

    deployment_file = lakehouse(rows=20, files=1, rules=[{"name": "typo", "expr": "nope > 0"}])
    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    level, collected = logger.level, Collected()
    logger.setLevel(logging.INFO)  # as in a notebook (the command line's tests quiet it)
    logger.addHandler(collected)
    try:
        with pytest.raises(DeploymentError, match=r"Rule typo .*`nope`"):
            score(spark, load_deployment(deployment_file), "typo-in-a-cell")
        assert collected.records == []
        assert logger.level == logging.INFO

        with pytest.raises(AnalysisException):  # the user's own query, after the run
            spark.range(1).selectExpr("nope > 0").collect()
        assert [r.getMessage() for r in collected.records] != []
    finally:
        logger.removeHandler(collected)
        logger.setLevel(level)
