"""Validation checks as Columns: signature checks and rules, on small local DataFrames."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import columns as C
from lakescore import pipeline
from lakescore.config import Rule
from lakescore.model import InputColumn, ModelVersion, OutputColumn, ResolvedModel
from lakescore.validate import ERRORS_TYPE, columns_read

INPUTS = (InputColumn("kwh", "double"), InputColumn("tariff", "string"))
SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType()),
        T.StructField("kwh", T.StringType()),  # as read from a messy source
        T.StructField("tariff", T.StringType()),
    ]
)

_MODEL = ResolvedModel(
    version=ModelVersion("models:/m@a", "models:/m/1", "m", "1", "models:/m/1"),
    local_path="",
    inputs=INPUTS,
    outputs=(OutputColumn("prediction", "double"),),
)


def _constant_score(model_input: Any) -> Any:
    """A Spark-only stand-in for the model UDF (its output struct), to test the counting."""
    return F.struct(
        F.when(model_input["__lakescore_valid"], F.lit(1.0)).alias("prediction"),
        F.lit(None).cast("string").alias("_score_error"),
        F.lit("host/driver").alias("_executor"),
        F.lit(1).cast("bigint").alias("_task"),
    )


def _errors(spark: Any, rows: list[tuple[Any, ...]], rules: tuple[Rule, ...] = ()) -> Any:
    validated = pipeline.validate(spark.createDataFrame(rows, SCHEMA), INPUTS, rules)
    return validated.frame.select(
        "id", F.transform("_errors", lambda e: F.concat_ws("|", e.rule, e.column)).alias("why")
    )


def _expected(spark: Any, rows: list[tuple[str, list[str]]]) -> Any:
    schema = T.StructType(
        [T.StructField("id", T.StringType()), T.StructField("why", T.ArrayType(T.StringType()))]
    )
    return spark.createDataFrame(rows, schema)


def test_signature_checks_name_the_rule_and_column(spark: Any) -> None:
    actual = _errors(
        spark,
        [
            ("ok", "1.5", "smart"),
            ("text", "n/a", "smart"),
            ("null", None, "smart"),
            ("nan", "NaN", "smart"),
            ("inf", "Infinity", "smart"),
            ("neg-inf", "-Infinity", None),
        ],
    )
    expected = _expected(
        spark,
        [
            ("ok", []),
            ("text", ["type_mismatch|kwh"]),
            ("null", ["required_null|kwh"]),
            ("nan", ["nan|kwh"]),
            ("inf", ["infinite|kwh"]),
            ("neg-inf", ["infinite|kwh", "required_null|tariff"]),
        ],
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_error_struct_carries_stage_and_message(spark: Any) -> None:
    validated = pipeline.validate(spark.createDataFrame([("x", "abc", "s")], SCHEMA), INPUTS, ())
    error = validated.frame.select(F.col("_errors")[0].alias("e")).first()["e"]
    assert error["stage"] == "validate"
    assert error["message"] == "kwh value 'abc' cannot be cast to double"
    assert validated.frame.schema["_errors"].dataType == ERRORS_TYPE


def test_rules_quarantine_and_warn(spark: Any) -> None:
    rules = (
        Rule("positive", "cast(kwh as double) > 0", "quarantine"),
        Rule("known_tariff", "tariff IN ('smart', 'standard')", "warn"),
    )
    rows = [
        ("ok", "2", "smart"),
        ("neg", "-1", "smart"),
        ("odd", "3", "other"),
        ("nulltariff", "3", None),
    ]
    validated = pipeline.validate(spark.createDataFrame(rows, SCHEMA), INPUTS, rules)
    got = {
        r["id"]: (sorted(e["rule"] for e in r["_errors"]), list(r["_warnings"]))
        for r in validated.frame.collect()
    }
    assert got["ok"] == ([], [])
    assert got["neg"] == (["positive"], [])
    assert [w["rule"] for w in got["odd"][1]] == ["known_tariff"] and got["odd"][0] == []
    # tariff is a required input: its null is quarantined as such, not also blamed on the rule.
    assert got["nulltariff"] == (["required_null"], [])


def test_staged_rows_count_each_check_and_fail_rules_do_not_quarantine(spark: Any) -> None:
    rules = (
        Rule("stop", "cast(kwh as double) < 100", "fail"),
        Rule("odd", "tariff = 's'", "warn"),
    )
    # d breaks the warn rule too, but is quarantined (kwh is no number), so it is not counted:
    # warnings_by_rule counts the scored rows that broke the rule.
    rows = [("a", "1", "s"), ("b", "500", "t"), ("c", None, "s"), ("d", "x", "t")]
    as_read = spark.createDataFrame(rows, SCHEMA).select(
        "*",
        F.lit("file:/in/part-0.parquet").alias("_source_file"),
        F.current_timestamp().alias("_source_file_modified_at"),
        F.lit(None).cast("bigint").alias("_source_table_version"),
    )
    validated = pipeline.validate(as_read, INPUTS, rules)
    stamp = pipeline.RunStamp("run-1", datetime.now(UTC), _MODEL)
    staged = pipeline.staged(validated, INPUTS, _MODEL.outputs, _constant_score, ["id"], False)
    counts = {
        (r["rule"], r["column"]): r["rows"] for r in pipeline.check_failures(staged).collect()
    }
    parts = pipeline.staged_summary(staged).collect()
    assert sum(p["rows"] for p in parts) == 4
    assert sum(p["scored"] for p in parts) == 2  # fail rules do not quarantine, they stop the run
    assert counts == {
        ("required_null", "kwh"): 1,
        ("type_mismatch", "kwh"): 1,
        ("stop", None): 1,  # b breaks it; c's and d's kwh are quarantined instead
        ("odd", None): 1,
    }
    assert {
        r["id"] for r in pipeline.quarantine(staged, validated.input_columns, stamp).collect()
    } == {"c", "d"}


def test_a_rule_is_blamed_for_its_null_unless_a_value_it_reads_is_already_quarantined(
    spark: Any,
) -> None:
    """A rule that evaluates to null counts as broken, except when it is null because a column it
    reads failed a signature check that leaves the value null (required_null, type_mismatch).
    Before, a null kwh counted against every rule reading kwh, and a `fail` rule stopped the run
    for a row already quarantined for that null."""
    rules = (
        Rule("positive", "kwh > 0", "quarantine"),
        Rule("stop", "kwh < 100", "fail"),
        Rule("named", "id <> ''", "warn"),  # id is no model input: its null still counts
        # fail, not warn: a warn rule flags scored rows only, and the point is the quarantined
        Rule("both", "kwh > 0 AND tariff = 'smart'", "fail"),
    )
    rows = [
        ("text", "n/a", "smart"),  # type_mismatch: the rule sees null
        ("null", None, "standard"),  # required_null
        ("neg", "-1", "smart"),
        (None, "5", "smart"),
        ("big", "500", None),  # breaks `stop` whatever tariff's null
    ]
    as_read = spark.createDataFrame(rows, SCHEMA).select(
        "*",
        F.lit("file:/in/part-0.parquet").alias("_source_file"),
        F.current_timestamp().alias("_source_file_modified_at"),
    )
    validated = pipeline.validate(as_read, INPUTS, rules)
    staged = pipeline.staged(validated, INPUTS, _MODEL.outputs, _constant_score, ["id"], False)
    why = {
        r["id"]: sorted(
            f"{e['rule']}|{e['column'] or ''}"
            for e in [*(r["_errors"] or []), *(r["_flags"] or [])]
        )
        for r in staged.collect()
    }
    assert why == {
        "text": ["type_mismatch|kwh"],
        "null": ["both|", "required_null|kwh"],  # false, not null: tariff breaks it on its own
        "neg": ["both|", "positive|"],
        None: ["named|"],
        "big": ["required_null|tariff", "stop|"],
    }


@pytest.mark.parametrize(
    ("expr", "columns"),
    [
        ("kwh_7d >= 0", {"kwh_7d"}),
        ("`KWh 7d` > avg(kwh_30d) OVER ()", {"kwh 7d", "kwh_30d"}),
        ("reading.kwh > 0 AND exists(array(a), x -> x > 0)", {"reading", "a"}),
        ("exists(readings, (x, i) -> x > kwh + i)", {"readings", "kwh"}),  # kwh is no argument
        ("exists(readings, kwh -> kwh > 0)", {"readings"}),  # this kwh is the lambda's own
        ("id NOT IN (SELECT blocked_id FROM blocklist)", {"id"}),
        ("coalesce(try_divide(kwh, days), 0) >= 0", {"kwh", "days"}),
    ],
)
def test_the_columns_a_rule_reads_are_parsed_as_spark_parses_them(
    spark: Any, expr: str, columns: set[str]
) -> None:
    assert columns_read(spark, expr) == columns


@pytest.mark.parametrize("typed", ["bigint", "int"])
def test_integral_signature_rejects_fractional_strings_only_when_uncastable(
    spark: Any, typed: str
) -> None:
    inputs = (InputColumn("kwh", typed),)
    rows = [("a", "12", "s"), ("b", "twelve", "s"), ("c", "12.5", "s")]
    validated = pipeline.validate(spark.createDataFrame(rows, SCHEMA), inputs, ())
    bad = validated.frame.where(~F.col(pipeline.VALID))
    assert {r["id"] for r in bad.collect()} == {"b", "c"}
    rules = {e["rule"] for r in bad.collect() for e in r[C.ERRORS]}
    assert rules == {"type_mismatch"}


def test_missing_required_inputs_are_named(spark: Any) -> None:
    df = spark.createDataFrame([("a", "1", "s")], SCHEMA)
    from lakescore.errors import InputError
    from lakescore.model import OutputColumn

    with pytest.raises(InputError, match="peak_ratio, temp_c"):
        pipeline.check_input_columns(
            df,
            (*INPUTS, InputColumn("peak_ratio", "double"), InputColumn("temp_c", "double")),
            "id",
            ["id"],
            [OutputColumn("prediction", "double")],
            "models:/m/1",
        )


@pytest.mark.parametrize(
    "name",
    [
        "_run_id",
        "_errors",
        "_executor",
        "__lakescore_valid",
        "_RUN_ID",
        "_Errors",
        "__lakescore_raw_0",
    ],
)
def test_input_columns_named_like_lakescores_own_are_refused(spark: Any, name: str) -> None:
    from lakescore.errors import DeploymentError

    df = spark.createDataFrame([("a", "1", "s", "x")], [*SCHEMA.fieldNames(), name])
    with pytest.raises(DeploymentError, match=f"{name}.*clash with lineage or working columns"):
        pipeline.refuse_reserved_names(df)


def test_input_columns_lakescore_does_not_use_are_accepted(spark: Any) -> None:
    df = spark.createDataFrame([("a", "1", "s", "x", "y")], [*SCHEMA.fieldNames(), "_raw", "__x"])
    pipeline.refuse_reserved_names(df.select("*", F.lit("f").alias("_source_file")))


@pytest.mark.parametrize(
    ("outputs", "passthrough", "wanted"),
    [
        (("p(high)",), [], r"'p\(high\)'.*Delta tables without column mapping"),
        (("_run_id",), [], "_run_id of model models:/m/1 clash with lakescore.s lineage"),
        (("Score", "score"), [], "Score and score of model .* differ only in case"),
        (("prediction",), ["Prediction"], "Prediction have the same name"),
    ],
    ids=["delta-invalid", "lineage", "case-twins", "passthrough-case"],
)
def test_prediction_names_the_tables_cannot_hold_are_refused_before_the_pass(
    spark: Any, outputs: tuple[str, ...], passthrough: list[str], wanted: str
) -> None:
    """Delta refused such names only at the commit, after the whole pass, naming no model."""
    from lakescore.errors import DeploymentError

    df = spark.createDataFrame([("a", "1", "s", "x")], [*SCHEMA.fieldNames(), "Prediction"])
    columns = [OutputColumn(name, "double") for name in outputs]
    with pytest.raises(DeploymentError, match=wanted) as info:
        pipeline.check_input_columns(df, INPUTS, "id", passthrough, columns, "models:/m/1")
    assert "models:/m/1" in str(info.value) or "same name" in str(info.value)


@pytest.mark.parametrize(
    ("outputs", "passthrough", "wanted"),
    [
        (("prediction",), ["_commit_version"], "carries _commit_version, a name Delta keeps"),
        (("_Change_Type",), [], "models:/m/1 returns _Change_Type, a name Delta keeps"),
    ],
    ids=["passthrough", "output"],
)
def test_change_data_feed_names_are_refused_before_the_pass(
    spark: Any, outputs: tuple[str, ...], passthrough: list[str], wanted: str
) -> None:
    """An input built from a change feed keeps `_commit_version`; the predictions table has the
    feed on, and Delta refused the column only at the commit, about a feed no one asked for."""
    from lakescore.errors import DeploymentError

    df = spark.createDataFrame([("a", "1", "s", 7)], [*SCHEMA.fieldNames(), "_commit_version"])
    columns = [OutputColumn(name, "double") for name in outputs]
    with pytest.raises(DeploymentError, match=wanted):
        pipeline.check_input_columns(df, INPUTS, "id", passthrough, columns, "models:/m/1")


def test_a_model_without_a_signature_takes_nested_columns_as_read(spark: Any) -> None:
    """Without a signature every column is an input of its own type, nested ones included:
    an array column passes the check instead of 'cannot cast array<double> to array<double>'."""
    df = spark.createDataFrame([("a", [1.0, 2.0])], "id string, emb array<double>")
    unsigned = ResolvedModel(_MODEL.version, "", None, _MODEL.outputs)
    inputs = pipeline.model_inputs(unsigned, df, "id")
    assert inputs == (InputColumn("emb", "array<double>", required=False),)
    pipeline.check_input_columns(df, inputs, "id", ["id"], _MODEL.outputs, "models:/m/1")


def test_a_rule_with_a_subquery_quarantines_the_rows_it_names(spark: Any) -> None:
    """`id NOT IN (SELECT id FROM blocklist)`: Spark refused the subquery inside the lambda the
    errors array was filtered with."""
    spark.createDataFrame([("b",)], "id string").createOrReplaceTempView("blocklist")
    try:
        rules = (Rule("not_blocked", "id NOT IN (SELECT id FROM blocklist)", "quarantine"),)
        rows = [("a", "1", "s"), ("b", "2", "s")]
        validated = pipeline.validate(spark.createDataFrame(rows, SCHEMA), INPUTS, rules)
        got = {r["id"]: [e["rule"] for e in r["_errors"]] for r in validated.frame.collect()}
        # The rule is evaluated once per row: each check that read it used to join the
        # blocklist again (three joins for this one rule).
        plan = validated.frame._jdf.queryExecution().optimizedPlan().toString()
    finally:
        spark.catalog.dropTempView("blocklist")  # the session is every test's
    assert got == {"a": [], "b": ["not_blocked"]}
    assert plan.count("ExistenceJoin(") == 1


@pytest.mark.parametrize(
    ("typed", "column_type", "value"),
    [
        ("boolean", "int", 7),  # a cast makes it true
        ("float", "double", 1e300),  # a cast makes it infinite
        ("float", "string", "1e300"),
        ("float", "double", 1e-60),  # a cast makes it 0
        ("double", "string", "1e400"),  # too large for a double: infinite, but not given so
        ("float", "string", "1e-50"),
        ("float", "int", 16_777_217),  # a float holds every integer only up to 2**24
        ("float", "bigint", -16_777_219),
        ("double", "bigint", 2**53 + 1),  # a double, up to 2**53
        ("double", "bigint", 2**63 - 1),  # rounded to 2**63, beyond bigint
        # An integer as text (a bigint another file has as a double) or as a whole decimal.
        ("double", "string", str(2**53 + 1)),
        ("float", "string", "\t16777217 "),
        ("double", "decimal(20,0)", Decimal(2**53 + 1)),
        ("double", "decimal(22,2)", Decimal(2**53 + 1)),
        ("float", "decimal(10,0)", Decimal(16_777_217)),
        ("double", "string", "12345678901234567891"),  # beyond bigint
        ("double", "decimal(20,0)", Decimal(2**64 - 1)),  # Parquet's UINT64, as Spark reads it
    ],
)
def test_casts_that_change_a_value_are_type_mismatches(
    spark: Any, typed: str, column_type: str, value: Any
) -> None:
    """The row is quarantined as type_mismatch naming the value, not scored as true or 0, nor
    called `infinite` (the value was not)."""
    frame = spark.createDataFrame([("a", value)], f"id string, n {column_type}")
    validated = pipeline.validate(frame, (InputColumn("n", typed),), ())
    [row] = validated.frame.collect()
    assert [e["rule"] for e in row["_errors"]] == ["type_mismatch"]


def test_values_a_cast_keeps_are_not_type_mismatches(spark: Any) -> None:
    """A fraction a double keeps only to its last digits is not an integer rounded."""
    fraction = Decimal("0.123456789012345678")
    rows = [
        ("a", 1, 0.5, "2.5", 2**53, 16_777_216, str(2**53), Decimal(2**53), fraction),
        ("b", 0, 0.0, "-inf", -(2**60), None, "0.1234567890123456789", Decimal(7), None),
        ("c", 1, 1.0, " Infinity ", None, -7, "-12", None, Decimal(-2)),
        # A double holds 2**60 exactly: read back through its shortest text it seemed rounded.
        ("d", 1, 1.0, "1", None, None, f" +{2**60}", Decimal(2**60), None),
    ]
    schema = (
        "id string, flag int, x double, y string, big bigint, small int, text string, "
        "whole decimal(20,0), exact decimal(38,18)"
    )
    frame = spark.createDataFrame(rows, schema)
    inputs = (
        InputColumn("flag", "boolean"),
        InputColumn("x", "float"),
        InputColumn("y", "float"),
        InputColumn("big", "double", required=False),
        InputColumn("small", "float", required=False),
        InputColumn("text", "double"),
        InputColumn("whole", "double", required=False),
        InputColumn("exact", "double", required=False),
    )
    validated = pipeline.validate(frame, inputs, ())
    got = {r["id"]: [e["rule"] for e in r["_errors"]] for r in validated.frame.collect()}
    assert got == {"a": [], "b": ["infinite"], "c": ["infinite"], "d": []}


def _user_agent_of(model_input: Any) -> Any:
    """A Spark-only stand-in for the model UDF that predicts the `user-agent` it was given."""
    return F.struct(
        model_input["req"]["user-agent"].alias("prediction"),
        F.lit(None).cast("string").alias("_score_error"),
        F.lit("host/driver").alias("_executor"),
        F.lit(1).cast("bigint").alias("_task"),
    )


def test_a_model_without_a_signature_takes_a_struct_whose_field_names_need_quoting(
    spark: Any,
) -> None:
    """A struct field named `user-agent` reads fine, but its type string does not parse back:
    the column reaches a model without a signature as read, with no cast to fail on."""
    df = spark.createDataFrame(
        [("a", ("curl/8", 1.0))], "id string, req struct<`user-agent`: string, `p.q`: double>"
    ).select(
        "*",
        F.lit("file:/in/part-0.parquet").alias("_source_file"),
        F.current_timestamp().alias("_source_file_modified_at"),
    )
    unsigned = ResolvedModel(_MODEL.version, "", None, (OutputColumn("prediction", "string"),))
    inputs = pipeline.model_inputs(unsigned, df, "id")
    validated = pipeline.validate(df, (), ())
    staged = pipeline.staged(validated, inputs, unsigned.outputs, _user_agent_of, ["id"], False)
    assert [(row["id"], row["prediction"]) for row in staged.collect()] == [("a", "curl/8")]
