"""Exceptions that carry one clear sentence and the exit code the CLI returns for them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from py4j.protocol import Py4JError, Py4JJavaError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT (128 + 2)
EXIT_TERMINATED = 143  # and for SIGTERM (128 + 15)


class LakescoreError(Exception):
    """An expected failure: its message is shown to the operator as-is, without a traceback."""

    exit_code = EXIT_FAILED
    run_record: dict[str, Any] | None = None  # the failed run's record, once it has one


class DeploymentError(LakescoreError):
    """The deployment file (or a command-line override) is wrong."""

    exit_code = EXIT_USAGE


def reserved_columns_error(names: Sequence[str]) -> DeploymentError:
    """Input columns named like the columns a run adds (lineage, working columns)."""
    return DeploymentError(
        f"Input column(s) {', '.join(names)} clash with lineage or working columns that "
        "lakescore adds: rename them upstream."
    )


class UsageError(LakescoreError):
    """A command-line value (or the same argument of `score()`) is wrong; the file is not."""

    exit_code = EXIT_USAGE


class ModelNotFoundError(DeploymentError):
    """The model name, version, alias or path does not exist."""


class ModelNotReadyError(LakescoreError):
    """The registered model version exists but its registration is pending or failed: its files
    may be incomplete. Exit 1, not 2: a pending one is ready after a while, unchanged."""


class RegistryUnreachableError(LakescoreError):
    """The MLflow tracking server or registry could not be reached."""


class InputError(LakescoreError):
    """The input path is missing, empty or unreadable."""


class NoReadableInputError(InputError):
    """Not one input file could be read: the run records each one (path and error) all the same."""

    def __init__(self, message: str, files_failed: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.files_failed = files_failed


class RuleFailedError(LakescoreError):
    """At least one row broke a rule with action `fail` (false or null for it)."""


class ScoringError(LakescoreError):
    """The model raised, or returned something lakescore cannot store."""


class LimitExceededError(LakescoreError):
    """Too many rows were quarantined: the run is aborted and no predictions are committed."""

    exit_code = EXIT_ABORTED


class TableSchemaError(LakescoreError):
    """A run's column does not fit the type an existing output table stores it as."""


class EnvironmentProblem(LakescoreError):
    """The machine lacks something Spark needs (Java 17+)."""


class AttemptSupersededError(LakescoreError):
    """Another attempt of the same run id started after this one: this one must not commit."""


class IncompleteInputError(LakescoreError):
    """The input is not complete yet (input.expect): nothing is committed."""

    exit_code = EXIT_ABORTED


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler stopping the job), raised in the main thread like Ctrl-C, so the run
    records that it ended instead of staying `running`."""


def interruption(exc: BaseException) -> str:
    """How an interrupted run ended, in a few words."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or a cancelled notebook cell)"
    return f"stopped by {type(exc).__name__}"


def spark_error_message(exc: BaseException) -> str:
    """The first meaningful line of a Spark or Py4J error, without the JVM stack."""
    text = str(exc)
    if isinstance(exc, Py4JJavaError):
        text = str(exc.java_exception)
    if "PythonException" in text or "Traceback" in text:
        return python_error_message(text)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "An error occurred")):
            return line[:500]
    return type(exc).__name__


def with_cause(exc: BaseException) -> str:
    """`spark_error_message`, followed by the JVM error's direct cause. A file that fails while
    being read says only `[FAILED_READ_FILE.NO_HINT] Encountered error while reading file …`;
    the cause says what is wrong with it (`can not read class …PageHeader`)."""
    message = spark_error_message(exc)
    java = exc.java_exception if isinstance(exc, Py4JJavaError) else getattr(exc, "_origin", None)
    try:
        cause = java.getCause() if java is not None else None
        if cause is None:
            return message
        detail = f"{cause.getClass().getName()}: {cause.getMessage()}"
    except Py4JError:  # the JVM is going away: the message is all there is
        return message
    return f"{message.rstrip()} Cause: {detail.strip().splitlines()[0][:300]}"


def python_error_message(text: str) -> str:
    """The last `Error: message` line of a Python traceback relayed through Spark."""
    found = re.findall(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", text, re.MULTILINE)
    for name, message in reversed(found):
        if name not in ("PythonException", "Py4JJavaError", "SparkException"):
            return f"{name}: {message.strip()}"[:500]
    return text.strip().splitlines()[-1][:500] if text.strip() else "unknown error"
