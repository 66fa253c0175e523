"""Command line: argument parsing → config → runner, and the `deployment show`, `runs` and
`demo` commands, which print what model.py and runs.py find, or build and score the demo.

Exit codes: 0 succeeded, 1 failed, 2 bad usage or deployment file, 3 aborted (by an error
limit, a model that failed on every row, or an incomplete input), 130 interrupted (SIGINT), 143
terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from lakescore import __version__
from lakescore.config import Deployment, deployment_as_dict, load_deployment
from lakescore.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    DeploymentError,
    LakescoreError,
    Terminated,
    interruption,
    spark_error_message,
)
from lakescore.progress import Progress
from lakescore.redaction import ScrubbingFormatter, scrub, scrub_every_log_record
from lakescore.report import format_runs, print_deployment, print_run, to_json
from lakescore.spark_logs import quiet_query_context_logs


class _UsageError(Exception):
    """A command line argparse refused, with the usage of the (sub)command it was for."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """argparse's parser, raising instead of exiting, so that a usage error with --json still
    prints JSON on stdout (subcommands' parsers are of the same class). No abbreviated
    options: `--js` for `--json` would slip past the check for `--json` a usage error makes,
    and a later option of the same prefix would change what an existing command means."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("lakescore").strip()  # "runs list", or "" at the top
        raise _UsageError(f"{command}: {message}" if command else message, self.format_usage())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lakescore", description="Batch inference for the lakehouse.")
    parser.add_argument("--version", action="version", version=f"lakescore {__version__}")
    verbs = parser.add_subparsers(dest="command", required=True)

    score = verbs.add_parser("score", help="run a deployment once")
    score.add_argument("deployment", help="deployment file (YAML)")
    score.add_argument("--run-id", help="run id; rerunning one replaces that run's rows")
    score.add_argument("--input", help="read this input path instead of the deployment's")
    _common(score)

    deployment = verbs.add_parser("deployment", help="inspect a deployment")
    deployment_verbs = deployment.add_subparsers(dest="action", required=True)
    show = deployment_verbs.add_parser("show", help="the resolved deployment and its model")
    show.add_argument("deployment")
    _common(show)

    runs = verbs.add_parser("runs", help="the runs table of a deployment")
    runs_verbs = runs.add_subparsers(dest="action", required=True)
    listing = runs_verbs.add_parser("list", help="recent runs, newest first")
    listing.add_argument("deployment")
    listing.add_argument("--limit", type=_at_least(1), default=20)
    _common(listing)
    one = runs_verbs.add_parser("show", help="one run")
    one.add_argument("deployment")
    one.add_argument("run_id")
    _common(one)

    demo = verbs.add_parser("demo", help="build a small lakehouse and score it")
    demo.add_argument("--dir", default="lakehouse", help="folder to build it in")
    demo.add_argument(
        "--rows", type=_at_least(DEMO_MIN_ROWS), default=60_000, help="rows of sample data"
    )
    _common(demo, with_json=False)
    return parser


# The demo spoils at least 5 rows, 4 of them to quarantine; with fewer than 100 rows that would
# trip its deployment's 5% error limit.
DEMO_MIN_ROWS = 100


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= low (argparse exits 2 with the message otherwise)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:,}, not {value:,}")
        return value

    return whole


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
    except _UsageError as exc:
        print(exc.usage, end="", file=sys.stderr)
        wants_json = argparse.Namespace(json="--json" in arguments)
        return _failure(wants_json, str(exc), EXIT_USAGE)
    _configure_logging(args.verbose)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a reader gone (`| head`) shows here, not in Python's flush at exit
        return code
    except LakescoreError as exc:
        return _failure(args, scrub(_naming_the_file(args, exc)), exc.exit_code, exc.run_record)
    except KeyboardInterrupt as exc:  # the run, if one started, has recorded how it ended
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        said = str(exc) or interruption(exc)  # a run's stop says whether it was recorded
        return _failure(args, scrub(said), code, getattr(exc, "run_record", None))
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            _drop_stdout()
            print(f"lakescore: error: {_STDOUT_CLOSED}", file=sys.stderr)
            return EXIT_FAILED
        if args.verbose:
            # the bug's traceback, and still the JSON a scheduler parses
            print(scrub(traceback.format_exc()), end="", file=sys.stderr)
        return _failure(
            args,
            f"unexpected {type(exc).__name__}: {scrub(_first_line(exc))}"
            + ("" if args.verbose else " (rerun with --verbose for the traceback)"),
            EXIT_FAILED,
            getattr(exc, "run_record", None),
        )


_STDOUT_CLOSED = "standard output was closed before all was written to it"


def _drop_stdout() -> None:
    """Its reader has gone: what is left unwritten goes nowhere (Python's own flush at exit
    would print a traceback)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _stdout_closed() -> bool:
    """Whether standard output's reader has gone (not some other pipe: MLflow's, Py4J's)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (a notebook's stream)
        return False


def _failure(
    args: argparse.Namespace, message: str, exit_code: int, run: dict[str, Any] | None = None
) -> int:
    """One sentence on stderr; with --json, also `{"error", "exit_code", "run"}` on stdout, for
    every failure (a bad deployment file too), so a scheduler always gets JSON to parse."""
    if getattr(args, "json", False):
        try:
            print(to_json({"error": message, "exit_code": exit_code, "run": run}), flush=True)
        except BrokenPipeError:
            _drop_stdout()
            message = f"{message.rstrip('.')}; {_STDOUT_CLOSED}"
    print(f"lakescore: error: {message}", file=sys.stderr)
    return exit_code


def _naming_the_file(args: argparse.Namespace, exc: LakescoreError) -> str:
    """A deployment mistake that shows only once the run has started (a rule, a column it
    names) names the file too, as the mistakes the file alone shows do: one scheduler's log
    holds the errors of many deployments."""
    message = str(exc)
    given = getattr(args, "deployment", None)
    if isinstance(exc, DeploymentError) and given and str(Path(given)) not in message:
        return f"{Path(given)}: {message}"
    return message


def _first_line(exc: BaseException) -> str:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    if isinstance(exc, Py4JJavaError | PySparkException):
        return spark_error_message(exc)  # Py4J's own first line names only a JVM object id
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from lakescore.demo import run_demo

        return run_demo(args.dir, args.rows, verbose=args.verbose)
    deployment = load_deployment(args.deployment)
    if args.command == "score":
        return _score(args, deployment)
    if args.command == "deployment":
        return _show_deployment(args, deployment)
    return _runs(args, deployment)


def _score(args: argparse.Namespace, deployment: Deployment) -> int:
    from lakescore.catalog import uses_catalog
    from lakescore.runner import check_run_id, score
    from lakescore.session import get_spark

    if args.run_id is not None:
        check_run_id(args.run_id)  # before Spark starts
    if args.input is not None:
        deployment = deployment.with_input_path(args.input)
    progress = Progress(enabled=not args.json)
    spark = get_spark(
        verbose=args.verbose,
        show_progress=progress.interactive,
        catalog=uses_catalog(deployment),
    )
    result = score(spark, deployment, args.run_id, progress)  # a failure carries its record
    if args.json:
        print(to_json(asdict(result.record)))
    else:
        print_run(asdict(result.record), result.deployment)  # its catalog tables resolved
    return EXIT_OK


def _show_deployment(args: argparse.Namespace, deployment: Deployment) -> int:
    from lakescore.model import resolve_model

    with tempfile.TemporaryDirectory(prefix="lakescore-show-") as folder:
        model = resolve_model(
            deployment.model.uri,
            deployment.model.tracking_uri,
            folder,
            deployment.scoring.result_type,
        )
    shown: dict[str, Any] = {
        "deployment": deployment_as_dict(deployment),
        "model": {
            "requested_uri": model.version.requested_uri,
            "pinned_uri": model.pinned_uri,
            "name": model.name,
            "version": model.version_label,
            "inputs": [asdict(c) for c in model.inputs] if model.inputs is not None else None,
            "outputs": [asdict(c) for c in model.outputs],
        },
    }
    if args.json:
        print(to_json(shown))
    else:
        print_deployment(shown)
    return EXIT_OK


def _runs(args: argparse.Namespace, deployment: Deployment) -> int:
    from lakescore.catalog import resolve_tables, uses_catalog
    from lakescore.runs import get_run, list_runs
    from lakescore.session import get_spark

    spark = get_spark(verbose=args.verbose, catalog=uses_catalog(deployment))
    deployment = resolve_tables(spark, deployment, create=False)
    if args.action == "list":
        runs = list_runs(spark, deployment.runs.path, args.limit, deployment.name)
        print(to_json(runs) if args.json else format_runs(runs))
        return EXIT_OK
    record = get_run(spark, deployment.runs.path, args.run_id)
    runs_table = deployment.runs.table or deployment.runs.path
    if record is None:
        raise LakescoreError(f"Run {args.run_id} is not in the runs table {runs_table}.")
    if record["deployment"] != deployment.name:
        # Its rows are in that deployment's tables, not in the ones this file names.
        raise LakescoreError(
            f"Run {args.run_id} in the runs table {runs_table} is a run of deployment "
            f"{record['deployment']}, not {deployment.name}: show it with that deployment's file."
        )
    if args.json:
        print(to_json(record))
    else:
        print_run(record, deployment)
    return EXIT_OK


def _common(parser: argparse.ArgumentParser, with_json: bool = True) -> None:
    if with_json:
        parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--verbose", action="store_true", help="show Spark's and MLflow's logs")


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    scrub_every_log_record()
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    if not verbose:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        for noisy in ("mlflow", "py4j", "alembic", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        quiet_query_context_logs()
        warnings.filterwarnings("ignore")


if __name__ == "__main__":
    sys.exit(main())
