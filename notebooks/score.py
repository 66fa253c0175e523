# Databricks notebook source
# MAGIC %md
# MAGIC # Score a deployment with lakescore
# MAGIC Runs one deployment file end to end (read, validate, score, quarantine, commit, record) and
# MAGIC shows the run record. Set the widgets, or outside Databricks the environment variables
# MAGIC `LAKESCORE_DEPLOYMENT` and `LAKESCORE_RUN_ID`.

# COMMAND ----------

from dataclasses import asdict

from lakescore.notebook import run_id_widget
from lakescore.notebook import widget as notebook_widget

try:
    _dbutils = dbutils  # type: ignore[name-defined]
except NameError:
    _dbutils = None


def widget(name: str, default: str) -> str:
    """A text widget on Databricks; an environment variable (or the default) elsewhere."""
    return notebook_widget(_dbutils, name, default)


deployment_path = widget("deployment", "lakehouse/deployment.yaml")
run_id = run_id_widget(_dbutils)  # blank: a new run id

# COMMAND ----------

from lakescore.catalog import uses_catalog  # noqa: E402
from lakescore.config import load_deployment  # noqa: E402
from lakescore.runner import score  # noqa: E402
from lakescore.session import get_spark  # noqa: E402

deployment = load_deployment(deployment_path)
spark = get_spark(catalog=uses_catalog(deployment))  # outside Databricks: a lasting metastore
result = score(spark, deployment, run_id)
record = asdict(result.record)
print(
    f"run {record['run_id']}: {record['status']}, read {record['rows_read']}, "
    f"scored {record['rows_scored']}, quarantined {record['rows_quarantined']}"
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quarantined rows of this run, by reason

# COMMAND ----------

from pyspark.sql import functions as F  # noqa: E402

quarantine_by_reason = (
    spark.read.format("delta")
    .load(result.deployment.quarantine.path)  # a catalog table resolved to its location
    .where(F.col("_run_id") == record["run_id"])
    .select(F.explode("_errors").alias("error"))
    .groupBy("error.rule", "error.column")
    .count()
    .orderBy(F.desc("count"))
)
quarantine_by_reason.show(truncate=False)
