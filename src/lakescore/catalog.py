"""Catalog tables (`table: schema.name`): resolve each to its storage location before a run.

Everything after this works on locations, as for path tables; a catalog table that does not
exist yet gets the location the catalog would give it (its schema's folder) and is registered
under its name when lakescore creates it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyspark.sql import SparkSession

from lakescore.columns import quoted as column_quoted
from lakescore.config import Deployment
from lakescore.errors import InputError


def uses_catalog(deployment: Deployment) -> bool:
    tables = (deployment.input, deployment.output, deployment.quarantine, deployment.runs)
    return any(t.table for t in tables)


def resolve_tables(spark: SparkSession, deployment: Deployment, create: bool = True) -> Deployment:
    """The deployment with every catalog table's location as its path.

    `create=False` is for looking at a deployment's runs: no schema is created. A missing input
    table is left unresolved (its path empty): a run fails on it once it has a record to say so
    in (see require_input_table), and its runs are worth seeing all the more when it has gone.
    """
    changes: dict[str, Any] = {}
    input_table = deployment.input.table
    if input_table and spark.catalog.tableExists(input_table):
        location = table_location(spark, input_table, create=False)
        changes["input"] = replace(deployment.input, path=location)
    for key in ("output", "quarantine", "runs"):
        config = getattr(deployment, key)
        if config.table:
            changes[key] = replace(config, path=table_location(spark, config.table, create))
    return replace(deployment, **changes) if changes else deployment


def require_input_table(deployment: Deployment) -> None:
    """Fail a run whose input table resolve_tables did not find (dropped, renamed)."""
    if deployment.input.table and not deployment.input.path:
        raise InputError(f"Input table {deployment.input.table} does not exist.")


def table_location(spark: SparkSession, name: str, create: bool = True) -> str:
    """Where the table's files are, or will be (its schema is created when `create`)."""
    if spark.catalog.tableExists(name):
        row = spark.sql(f"DESCRIBE DETAIL {quoted(name)}").select("location").first()
        assert row is not None
        return str(row[0])
    schema, _, table = name.rpartition(".")
    if schema and create:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {column_quoted(schema)}")
    database = schema or spark.catalog.currentDatabase()
    if not spark.catalog.databaseExists(database):
        return ""
    return spark.catalog.getDatabase(database).locationUri.rstrip("/") + "/" + table


def quoted(name: str) -> str:
    """A `schema.table` name as Spark SQL identifiers, part by part."""
    return ".".join(column_quoted(part) for part in name.split("."))
