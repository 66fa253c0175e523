# Databricks notebook source
# MAGIC %md
# MAGIC # Explore a lakescore run
# MAGIC Answers the operator's questions about one run from lakescore's own tables, without logs:
# MAGIC did it finish and do the counts reconcile, why were rows quarantined, which input files
# MAGIC could not be read, and which model version scored the rows.
# MAGIC
# MAGIC Widgets: `deployment` (the deployment file) and `run_id` (empty for the newest run).
# MAGIC Outside Databricks, set the environment variables `LAKESCORE_DEPLOYMENT` and
# MAGIC `LAKESCORE_RUN_ID` instead.

# COMMAND ----------

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakescore.catalog import resolve_tables, uses_catalog
from lakescore.columns import quoted
from lakescore.config import load_deployment
from lakescore.notebook import widget as notebook_widget
from lakescore.session import get_spark

try:
    _dbutils = dbutils  # type: ignore[name-defined]
except NameError:
    _dbutils = None


def widget(name: str, default: str) -> str:
    """A text widget on Databricks; an environment variable (or the default) elsewhere."""
    return notebook_widget(_dbutils, name, default)


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


deployment_path = widget("deployment", "lakehouse/deployment.yaml")
run_id = widget("run_id", "")

deployment = load_deployment(deployment_path)
spark = get_spark(catalog=uses_catalog(deployment))
# Catalog tables (`table: schema.name`) by their locations, as `lakescore runs` reads them.
deployment = resolve_tables(spark, deployment, create=False)


def table(path: str) -> DataFrame | None:
    """One of the deployment's Delta tables, or None while no run has created it (a catalog
    table whose schema does not exist yet has no path)."""
    if not path or not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path)


# COMMAND ----------

# MAGIC %md
# MAGIC ## The run record
# MAGIC One row per run id in the runs table. A run is `succeeded` only when
# MAGIC `rows_read == rows_scored + rows_quarantined`; otherwise `error` says why not.

# COMMAND ----------

runs = table(deployment.runs.path)
if runs is None:
    raise ValueError(f"No runs table at {deployment.runs.path} yet: score the deployment first.")
# Deployments may share a runs table; this deployment's rows are in its own output tables.
runs = runs.where(F.col("deployment") == deployment.name)
if not run_id:
    newest = runs.orderBy(F.desc("started_at")).select("run_id").first()
    if newest is None:
        raise ValueError(f"The runs table {deployment.runs.path} is empty.")
    run_id = str(newest["run_id"])
found = runs.where(F.col("run_id") == run_id).first()
if found is None:
    raise ValueError(
        f"Run {run_id} of deployment {deployment.name} is not in the runs table "
        f"{deployment.runs.path}."
    )
run = found.asDict(recursive=True)
files_failed = run.get("files_failed") or []
reconciles = run["rows_read"] is not None and run["rows_read"] == (run["rows_scored"] or 0) + (
    run["rows_quarantined"] or 0
)

print(f"run {run_id} of {run['deployment']}: {run['status']}")
print(f"  model        {run['model_uri']} (version {run['model_version']})")
print(
    f"  rows         read {count(run['rows_read'])}, scored {count(run['rows_scored'])}, "
    f"quarantined {count(run['rows_quarantined'])} "
    f"({'reconciles' if reconciles else 'does NOT reconcile'})"
)
print(f"  files        read {count(run['files_read'])}, failed {len(files_failed):,}")
print(f"  started      {run['started_at']}, finished {run['finished_at']}")
print(f"  versions     predictions {run['output_version']}, quarantine {run['quarantine_version']}")
if run["error"]:
    print(f"  error        {run['error']}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Why rows were quarantined
# MAGIC Every quarantined row holds one or more errors: the stage (`validate` or `score`),
# MAGIC the rule or check, the column and a message. A file that could not be read has no rows
# MAGIC here: it is recorded whole, in the run's `files_failed` and the failed-files table.

# COMMAND ----------

quarantine = table(deployment.quarantine.path)
quarantined = quarantine.where(F.col("_run_id") == run_id) if quarantine is not None else None
if quarantined is None:
    print(f"quarantined rows of run {run_id}: 0 (no quarantine table yet)")
else:
    errors = quarantined.select(F.explode("_errors").alias("error"))
    reasons = (
        errors.groupBy("error.stage", "error.rule", "error.column")
        .count()
        .orderBy(F.desc("count"), "stage", "rule", "column")
    )
    print(
        f"quarantined rows of run {run_id}: {quarantined.count():,}, "
        f"with {errors.count():,} error(s) by stage, rule and column:"
    )
    reasons.show(50, truncate=False)
    key = deployment.input.key
    sample = quarantined.select(
        *([F.col(quoted(key))] if key else []),  # a key may hold a dot
        F.col("_errors")[0]["message"].alias("first_error"),
        "_source_file",
    )
    sample.show(5, truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Input files that could not be read
# MAGIC From the run record's `files_failed` (path and error).

# COMMAND ----------

failed_files = (
    runs.where(F.col("run_id") == run_id)
    .select(F.explode("files_failed").alias("file"))
    .select("file.path", "file.error")
)
print(f"input files of run {run_id} that could not be read: {failed_files.count():,}")
if files_failed:
    failed_files.show(truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Predictions by model version
# MAGIC Every prediction carries the model version pinned for its run (`_model_version`), and the
# MAGIC input file it came from (`_source_file`).

# COMMAND ----------

predictions = table(deployment.output.path)
if predictions is None:
    print(f"predictions of run {run_id}: 0 (no predictions table yet)")
else:
    scored = predictions.where(F.col("_run_id") == run_id)
    print(f"predictions of run {run_id}: {scored.count():,}, by model version:")
    scored.groupBy("_model_name", "_model_version", "_model_uri").count().show(truncate=False)

    print("rows of this run per input file (scored and quarantined):")
    per_file = scored.groupBy("_source_file").agg(F.count("*").alias("scored"))
    if quarantined is not None:
        quarantined_per_file = quarantined.groupBy("_source_file").agg(
            F.count("*").alias("quarantined")
        )
        per_file = per_file.join(quarantined_per_file, "_source_file", "full_outer")
    per_file.fillna(0).orderBy("_source_file").show(100, truncate=False)

    print("the whole predictions table, by model version:")
    (
        predictions.groupBy("_model_name", "_model_version")
        .agg(F.count("*").alias("rows"), F.countDistinct("_run_id").alias("runs"))
        .orderBy("_model_name", "_model_version")
        .show(truncate=False)
    )
