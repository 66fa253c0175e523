"""Row checks as Columns: each returns an error struct when the row fails, else null. Pure, no I/O.

`check_rules` refuses, before the pass, a rule that is not a check of one row; it asks Spark to
analyse each rule's plan on the driver (no data is read).

A row whose `_errors` array is non-empty goes to quarantine. Checks come from two places: the
model's input signature (type, required, NaN, infinity) and the deployment's rules.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore.columns import (
    RULE_INFINITE,
    RULE_NAN,
    RULE_REQUIRED,
    RULE_TYPE,
    STAGE_VALIDATE,
    quoted,
)
from lakescore.config import Rule
from lakescore.errors import DeploymentError, spark_error_message
from lakescore.model import InputColumn, spark_data_type

ERROR_TYPE = T.StructType(
    [
        T.StructField("stage", T.StringType()),
        T.StructField("rule", T.StringType()),
        T.StructField("column", T.StringType()),
        T.StructField("message", T.StringType()),
    ]
)
ERRORS_TYPE = T.ArrayType(ERROR_TYPE)

# Signature checks that can leave the value a rule reads null: a null in a required input, or a
# value that does not cast (rules read the inputs cast to the signature's types). Other
# type_mismatch rows (a time pandas cannot hold, 1.5 for a long) keep a value.
_NULLING = (RULE_TYPE, RULE_REQUIRED)

_FLOATING = ("float", "double")
TIME_TYPES = ("timestamp", "timestamp_ntz")
# pandas' datetime64[ns] holds 1677-09-21 00:12:43 to 2262-04-11 23:47:16; whole days within.
_PANDAS_FIRST = "1677-09-22 00:00:00"
_PANDAS_LAST = "2262-04-10 23:59:59"


@dataclass(frozen=True)
class Check:
    """One named check: `failed` is true when the row breaks it; `error` is then its error struct
    (null when the row passes)."""

    rule: str
    column: str | None
    action: str
    failed: Column
    error: Column

    @property
    def reason(self) -> str:
        """The key under which the run record counts this check's failures."""
        return f"{self.rule}:{self.column}" if self.column else self.rule


def error_struct(stage: str, rule: str, column: str | None, message: Column) -> Column:
    """Build one `_errors` element."""
    return F.struct(
        F.lit(stage).alias("stage"),
        F.lit(rule).alias("rule"),
        F.lit(column).cast("string").alias("column"),
        message.cast("string").alias("message"),
    )


def missing_inputs(inputs: Sequence[InputColumn], columns: Sequence[str]) -> list[str]:
    """Required signature columns that the input does not have at all."""
    present = set(columns)
    return [c.name for c in inputs if c.required and c.name not in present]


def signature_checks(
    inputs: Sequence[InputColumn],
    schema: T.StructType,
    source: Mapping[str, str] | None = None,
    redact: Sequence[str] = (),
) -> list[Check]:
    """Checks from the model's input signature, for the columns the input has.

    `source` maps a column name to the column holding its values as read, when that differs.
    Messages about a column in `redact` do not quote its value.
    """
    present = {field.name: field.dataType for field in schema.fields}
    checks: list[Check] = []
    for spec in inputs:
        if spec.name not in present:
            continue  # an optional input the data lacks; required ones fail the run earlier
        raw = F.col(quoted((source or {}).get(spec.name, spec.name)))
        cast = raw.try_cast(spark_data_type(spec.spark_type))
        shown = (
            F.lit("(redacted)")
            if spec.name in redact
            else F.concat(F.lit("'"), F.substring(raw.cast("string"), 1, 200), F.lit("'"))
        )
        if spec.spark_type in TIME_TYPES:
            # Spark hands timestamps to pandas as datetime64[ns]: one value outside its range
            # fails the conversion of the whole batch, and the task with it.
            checks.append(
                _check(
                    RULE_TYPE,
                    spec.name,
                    (cast < F.lit(_PANDAS_FIRST).cast(spark_data_type(spec.spark_type)))
                    | (cast > F.lit(_PANDAS_LAST).cast(spark_data_type(spec.spark_type))),
                    F.concat(
                        F.lit(f"{spec.name} value "),
                        shown,
                        F.lit(f" is outside the times pandas holds ({_PANDAS_FIRST} to "),
                        F.lit(f"{_PANDAS_LAST})"),
                    ),
                )
            )
        if present[spec.name].simpleString() != spec.spark_type:
            checks.append(
                _check(
                    RULE_TYPE,
                    spec.name,
                    raw.isNotNull() & (cast.isNull() | _changed_by_cast(raw, cast, spec, present)),
                    F.concat(
                        F.lit(f"{spec.name} value "),
                        shown,
                        F.lit(f" cannot be cast to {spec.spark_type}"),
                    ),
                )
            )
        if spec.spark_type == "string":
            # Bytes that are not UTF-8 (as text, or binary cast to it) fail Arrow's conversion
            # of the whole batch, and the run.
            checks.append(
                _check(
                    RULE_TYPE,
                    spec.name,
                    ~F.is_valid_utf8(cast),
                    F.lit(f"{spec.name} value is not valid UTF-8 text"),
                )
            )
        if spec.required:
            checks.append(
                _check(
                    RULE_REQUIRED,
                    spec.name,
                    raw.isNull(),
                    F.lit(f"{spec.name} is null but the model requires it"),
                )
            )
        if spec.spark_type in _FLOATING:
            if spec.required:
                # An optional input may be missing, and to pandas NaN is missing: a null there
                # reaches the model as NaN too (infer_signature makes a column optional exactly
                # when its example held NaN, and such a model takes it).
                checks.append(
                    _check(
                        RULE_NAN,
                        spec.name,
                        F.isnan(cast),
                        F.lit(f"{spec.name} is NaN"),
                    )
                )
            # Infinite as given: one that a cast made (1e300 for a float, "1e400") is a type
            # mismatch instead (_changed_by_cast).
            infinite = cast.isin(*_INFINITIES) & _given_infinite(raw, present[spec.name])
            checks.append(
                _check(
                    RULE_INFINITE,
                    spec.name,
                    infinite,
                    F.concat(F.lit(f"{spec.name} is "), cast.cast("string")),
                )
            )
    return checks


def rule_checks(
    rules: Sequence[Rule],
    values: Sequence[Column],
    signature: Sequence[Check],
    reads: Mapping[str, Collection[str]],
) -> list[Check]:
    """The deployment's rules. A rule that evaluates to null counts as broken, unless it is null
    because a column it reads (`reads`: rule name to lower-cased column names) failed, on that
    row, a signature check that leaves the value null (`required_null`, `type_mismatch`): the row
    is quarantined for that value, and counting it against every rule that reads the column
    would blame the rules (or stop the run, for a `fail` rule) for a value already accounted for.

    `values`, one per rule, are the rules' results computed once in an earlier projection: each
    check reads its value several times, and Spark does not share a subquery between them."""
    checks = []
    for rule, value in zip(rules, values, strict=True):
        read = reads.get(rule.name, ())
        nulled = [
            F.coalesce(check.failed, F.lit(False))
            for check in signature
            if check.rule in _NULLING and check.column is not None and check.column.lower() in read
        ]
        broken = ~F.coalesce(value, F.lit(False))
        if nulled:
            broken = broken & ~(value.isNull() & functools.reduce(operator.or_, nulled))
        checks.append(
            _check(rule.name, None, broken, F.lit(f"rule failed: {rule.expr}"), rule.action)
        )
    return checks


def columns_read(spark: SparkSession, expr: str) -> frozenset[str]:
    """The columns a rule names, lower-cased (a struct field counts as its column), by Spark's own
    parser, so quoting, windows and lambdas are read as Spark reads them. Parsing only: nothing
    is resolved or run. Names inside a subquery are left out (most belong to its tables), so a
    column only a correlated subquery reads is not counted."""
    names: set[str] = set()
    _collect_names(spark._jsparkSession.sessionState().sqlParser().parseExpression(expr), (), names)
    return frozenset(names)


def _collect_names(node: Any, bound: Collection[str], names: set[str]) -> None:
    """Walk a parsed expression. Inside a lambda the parser makes every name a lambda variable;
    those that are not the lambda's own arguments are columns (`x -> x > kwh` reads kwh)."""
    kind = node.getClass().getSimpleName()
    if kind in ("UnresolvedAttribute", "UnresolvedNamedLambdaVariable"):
        name = str(node.nameParts().apply(0)).lower()
        if name not in bound:
            names.add(name)
        return
    if kind == "LambdaFunction":
        arguments = node.arguments()
        own = (arguments.apply(i).nameParts().apply(0) for i in range(arguments.size()))
        bound = {*bound, *(str(name).lower() for name in own)}
    children = node.children()
    for index in range(children.size()):
        _collect_names(children.apply(index), bound, names)


def passes(checks: Sequence[Check], action: str) -> Column:
    """True when the row breaks none of the checks with this action. Plain boolean logic, so the
    usual valid row costs a few comparisons; error structs are only built for rows that fail."""
    failed = [F.coalesce(c.failed, F.lit(False)) for c in checks if c.action == action]
    if not failed:
        return F.lit(True)
    return ~functools.reduce(operator.or_, failed)


def failures(checks: Sequence[Check], action: str) -> Column:
    """The error structs of the checks with this action that the row breaks: an empty array for
    a row that passes them all."""
    errors = [c.error for c in checks if c.action == action]
    if not errors:
        return F.array().cast(ERRORS_TYPE)
    # array_compact, not filter with a lambda: a rule may hold a subquery (`id NOT IN (SELECT
    # id FROM blocklist)`), which Spark refuses inside a higher-order function.
    return F.when(passes(checks, action), F.array().cast(ERRORS_TYPE)).otherwise(
        F.array_compact(F.array(*errors)).cast(ERRORS_TYPE)
    )


def cast_inputs(
    inputs: Sequence[InputColumn], present: Mapping[str, T.DataType], valid: Column
) -> list[Column]:
    """The model's input columns cast to the signature's types (valid rows cast cleanly). An
    optional input that the data lacks (not in `present`, the input's columns and types) is
    left out, as pyfunc allows. A column already of its type is not cast: a model without a
    signature takes columns as read, and the type string of a struct with a field like
    `user-agent` does not parse back.

    Integer, boolean, timestamp and string inputs are filled in rows that are not `valid` (the
    model never sees them): Arrow hands pandas float64 for an integer column holding a null,
    which pyfunc refuses and which rounds values above 2**53; a time pandas cannot hold, or text
    that is not UTF-8, fails the conversion of its whole batch.
    """
    cast = {
        c.name: (
            F.col(quoted(c.name))
            if present[c.name].simpleString() == c.spark_type
            else F.col(quoted(c.name)).try_cast(spark_data_type(c.spark_type))
        )
        for c in inputs
        if c.name in present
    }
    filler = {
        "int": F.lit(0),
        "bigint": F.lit(0),
        "boolean": F.lit(False),
        # An out-of-range time or bytes that are not UTF-8 would fail the whole batch.
        **{time: F.lit(None) for time in TIME_TYPES},
        "string": F.lit(None),
    }
    return [
        (
            F.when(valid, cast[c.name]).otherwise(
                filler[c.spark_type].cast(spark_data_type(c.spark_type))
            )
            if c.spark_type in filler
            else cast[c.name]
        ).alias(c.name)
        for c in inputs
        if c.name in present
    ]


def _changed_by_cast(
    raw: Column, cast: Column, spec: InputColumn, present: Mapping[str, T.DataType]
) -> Column:
    """True where a cast that succeeded still changed the value: a fraction cut off by a cast to
    an integer, a number other than 0 and 1 made a boolean (7 became true), an integer rounded
    by a float or double, or a number too large or too small for a float (made infinite, or 0)."""
    source = present[spec.name]
    if spec.spark_type in ("int", "bigint") and isinstance(
        source, T.FloatType | T.DoubleType | T.DecimalType
    ):
        return cast != raw
    if spec.spark_type == "boolean" and isinstance(source, T.NumericType):
        return ~raw.isin(0, 1)
    if (spec.spark_type, source.simpleString()) in _ROUNDED_INTEGERS:
        # A float holds every integer only up to 2**24, a double up to 2**53: 16777217 became
        # 16777216, which differs cast back. 2**63 - 1 rounds to 2**63, beyond bigint, which
        # Spark's cast back saturates to 2**63 - 1 again.
        beyond_bigint = F.coalesce(cast >= F.lit(2.0**63), F.lit(False))
        return ~cast.try_cast(source).eqNullSafe(raw) | beyond_bigint
    made_infinite = cast.isin(*_INFINITIES) & ~_given_infinite(raw, source)
    if spec.spark_type in _FLOATING and isinstance(source, T.DecimalType):
        # A whole decimal rounded as an integer is (a fraction losing its last digits is not).
        rounded = (raw == F.floor(raw)) & _rounded_integer(raw, cast)
        if spec.spark_type == "float":
            return rounded | made_infinite | ((cast == 0) & (raw != 0))
        return rounded
    if spec.spark_type == "float" and isinstance(source, T.DoubleType):
        return made_infinite | ((cast == 0) & (raw != 0))
    if spec.spark_type in _FLOATING and isinstance(source, T.StringType):
        # Integers as text (a bigint column another file has as a double): 2**53 + 1 rounded.
        integer = raw.rlike(r"^\s*[+-]?[0-9]+\s*$")
        rounded = integer & _rounded_integer(raw, cast)
        return rounded | made_infinite | ((cast == 0) & (raw.try_cast(T.DoubleType()) != 0))
    return F.lit(False)


def _rounded_integer(raw: Column, cast: Column) -> Column:
    """Whether a float or double made of a whole `raw` (text or a decimal) is another integer,
    compared as bigints below 2**63, where a double is one exactly (cast to a decimal, it goes
    through its shortest text: 2**60 read back as 1152921504606846980), and as decimals beyond
    (where that text can still differ from an integer the double holds exactly: such a value
    is quarantined as changed, not stored rounded)."""
    exact = T.DecimalType(38, 0)
    return F.when(
        F.abs(cast) < F.lit(2.0**63), ~cast.try_cast("bigint").eqNullSafe(raw.try_cast("bigint"))
    ).otherwise(~cast.try_cast(exact).eqNullSafe(raw.try_cast(exact)))


_INFINITIES = (float("inf"), float("-inf"))
# (input type, column type) where a cast may round an integer.
_ROUNDED_INTEGERS = {("float", "int"), ("float", "bigint"), ("double", "bigint")}


def _given_infinite(raw: Column, source: T.DataType) -> Column:
    """Whether the value as read is infinite: a float or double infinity, or text that spells one
    ("inf", "-Infinity"), not a number too large for the type ("1e400")."""
    if isinstance(source, T.StringType):
        return F.lower(F.trim(raw)).rlike("^[+-]?inf(inity)?$")
    if isinstance(source, T.FloatType | T.DoubleType):
        return raw.isin(*_INFINITIES)
    return F.lit(False)


def _check(
    rule: str, column: str | None, failed: Column, message: Column, action: str = "quarantine"
) -> Check:
    return Check(
        rule=rule,
        column=column,
        action=action,
        failed=failed,
        error=F.when(failed, error_struct(STAGE_VALIDATE, rule, column, message)),
    )


def check_rule_syntax(spark: SparkSession, rules: Sequence[Rule]) -> None:
    """Refuse a rule Spark cannot parse before the run is recorded, its model downloaded and its
    input listed: else a typo shows only once the input is complete (a run waiting for its
    marker is `aborted`, which a scheduler retries), after a failed run is recorded."""
    for rule in rules:
        try:
            spark._jsparkSession.sessionState().sqlParser().parseExpression(rule.expr)
        except PySparkException as exc:
            raise DeploymentError(
                f"Rule {rule.name} ({rule.expr}) is not valid Spark SQL: {spark_error_message(exc)}"
            ) from exc


def check_rules(frame: DataFrame, rules: Sequence[Rule]) -> None:
    """Refuse, before the pass and naming the rule, what is not a check of one row: an
    expression Spark cannot analyse, one that is not a boolean, an aggregate over the whole input
    (`avg(n) > 0`; a window, `n > avg(n) over ()`, is a row check), and a non-deterministic one
    (`rand() < 0.5`), whose verdict would differ each time the row is looked at: rows would be
    quarantined without a reason."""
    for rule in rules:
        where = f"Rule {rule.name} ({rule.expr})"
        try:
            checked = frame.select(F.expr(rule.expr).alias("rule"))
            data_type = checked.schema["rule"].dataType
            plan = checked._jdf.queryExecution().analyzed()
        except PySparkException as exc:
            raise DeploymentError(
                f"{where} is not a valid Spark SQL boolean expression over the input: "
                f"{spark_error_message(exc)}"
            ) from exc
        if not isinstance(data_type, T.BooleanType | T.NullType):
            raise DeploymentError(
                f"{where} gives {data_type.simpleString()}, not true or false: write a "
                "comparison (for example `flag <> 0` or `flag = 'Y'`)."
            )
        if plan.getClass().getSimpleName() == "Aggregate":
            raise DeploymentError(
                f"{where} aggregates the whole input instead of checking one row: use a window "
                "(for example `n > avg(n) OVER ()`)."
            )
        if not plan.deterministic():
            raise DeploymentError(
                f"{where} is not deterministic (rand(), uuid() and the like): a row's verdict "
                "would change each time it is looked at."
            )
