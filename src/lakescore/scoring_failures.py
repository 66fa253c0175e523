"""A failure inside the scoring pass, told as one sentence: the model's, naming its version, or a
rule's, naming the rule (or the rules that hold the part Spark points at)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.errors.exceptions.base import QueryContextType

from lakescore.config import Rule
from lakescore.errors import (
    DeploymentError,
    ScoringError,
    python_error_message,
    spark_error_message,
)
from lakescore.model import ResolvedModel

_T = TypeVar("_T")


def guard_scoring(
    model: ResolvedModel, rules: Sequence[Rule], redact: Sequence[str], write: Callable[[], _T]
) -> _T:
    """Turn a model failure inside the UDF into one sentence naming the model version, and a
    rule that raised on a row into one naming the rule (or the rules sharing the failing part).
    Spark's message quotes the value the rule failed on, so it is withheld when the rule reads a
    `quarantine.redact` column."""
    try:
        return write()
    except (Py4JJavaError, PySparkException) as exc:
        text = str(exc)
        if "ScoringError" in text or "PythonException" in text or "PYTHON_" in text:
            message = python_error_message(text)
            own = message.removeprefix(f"{ScoringError.__name__}: ")  # names the model itself
            raise ScoringError(
                own
                if own != message
                else f"Model {model.describe()} failed while scoring: {message}"
            ) from exc
        if "Python worker exited unexpectedly" in text:
            # Killed inside predict (out of memory, a native crash): no Python error to tell.
            raise ScoringError(
                f"Model {model.describe()} crashed its Python worker while scoring (out of "
                "memory, or a native library's crash; no Python error was raised): "
                f"{spark_error_message(exc)}"
            ) from exc
        suspects = _rules_that_raised(exc, rules)
        if suspects:
            detail = spark_error_message(exc).rstrip(". ")
            if any(name.lower() in r.expr.lower() for r in suspects for name in redact):
                condition = re.match(r"\[[A-Z0-9_.]+\]", detail)
                detail = (condition.group(0) if condition else "an error") + (
                    " (message withheld: the rule reads a quarantine.redact column)"
                )
            named = " or ".join(f"{r.name} ({r.expr})" for r in suspects)
            # Spark evaluates a part several rules share once, and points at its first spelling.
            shared = " (they share the part Spark points at)" if len(suspects) > 1 else ""
            raise DeploymentError(
                f"Rule {named} raised an error on a row instead of returning true or false"
                f"{shared}: {detail}. Write it with try_divide, try_cast and the like, so that "
                "such a row breaks the rule (null) and is quarantined."
            ) from exc
        raise


def _rules_that_raised(exc: BaseException, rules: Sequence[Rule]) -> list[Rule]:
    """The rules holding the SQL the error points at (Spark's query context): one, or all of
    those that share it, since Spark reports a shared part where it first occurs."""
    contexts = exc.getQueryContext() if isinstance(exc, PySparkException) else []
    fragments = [
        c.fragment() for c in contexts if c.contextType() == QueryContextType.SQL and c.fragment()
    ]
    return [r for r in rules if any(_holds(r.expr, f) for f in fragments)]


def _holds(expr: str, fragment: str) -> bool:
    """`fragment` in `expr` as whole names: `n / d` is not in `n / d2 > 0`."""
    before = r"(?<![\w`])" if re.match(r"[\w`]", fragment) else ""
    after = r"(?![\w`])" if re.search(r"[\w`]$", fragment) else ""
    return re.search(before + re.escape(fragment) + after, expr) is not None
