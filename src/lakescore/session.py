"""Getting a SparkSession with Delta Lake: reuse the one spark-submit or a notebook made, else build
a local one whose Delta jars Spark resolves from Maven Central on first use; and the session
settings a run changes for its pass only."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from pyspark import SparkContext
from pyspark.sql import SparkSession

from lakescore.errors import EnvironmentProblem, LakescoreError, UsageError
from lakescore.shared_state import changed_while_held

DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"

# The same settings as spark_conf/local.conf, for sessions lakescore builds itself.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    # Parquet's standard timestamps, not INT96: delta-rs and polars read INT96 as nanoseconds
    # and fail on times outside 1677-2262 (a 9999-12-31 kept in the quarantine).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.shuffle.partitions": "8",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
    "spark.sql.debug.maxToStringFields": "200",
    # A run generates about 100 classes; Spark's default cache of 100 evicted a third of them
    # by the next run, which then compiled them again (and the JIT warmed them up again).
    "spark.sql.codegen.cache.maxEntries": "1000",
}


def get_spark(
    verbose: bool = False, show_progress: bool = False, catalog: bool = False
) -> SparkSession:
    """The active session if there is one (notebook, spark-submit), else a local one.

    With `catalog`, a local session gets a persistent local metastore (Hive on Derby) so catalog
    tables outlive the process: in LAKESCORE_WAREHOUSE_DIR when set, else Spark's defaults
    (`metastore_db` and `spark-warehouse` in the current folder); a submitted job's session
    must have a catalog that outlives it.
    """
    active = _session_of_this_process()
    if active is not None:
        # A notebook's session: its log level is the user's (and the whole cluster's) to set.
        require_classic(active)
        require_delta(active)
        return active
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Under spark-submit: the properties file configured everything.
        submitted = SparkSession.builder.getOrCreate()
        require_classic(submitted)
        require_delta(submitted)
        if catalog:
            require_lasting_catalog(submitted)
        _quiet(submitted, verbose)
        return submitted
    if _connect_settings():
        # Refused before building: the builder would apply its settings over gRPC, retrying
        # for minutes when no server answers. Running locally instead would ignore the cluster
        # the user pointed at.
        raise _connect_refused()
    check_java()
    builder = SparkSession.builder.master(os.environ.get("LAKESCORE_SPARK_MASTER", "local[*]"))
    builder = builder.appName("lakescore")
    # Classic whatever SPARK_API_MODE, SPARK_CONNECT_MODE or an installed pyspark_connect make
    # the default: a local session is lakescore's own, and Connect cannot run it.
    builder = builder.config("spark.api.mode", "classic")
    defaults = spark_defaults()
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, _joined(defaults, key, value))
    # Python workers must run the interpreter that has lakescore installed, not whatever
    # `python3` is first on PATH.
    # PySpark reads the worker interpreter from PYSPARK_PYTHON only.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = builder.config("spark.jars", local_jars(defaults))
    if catalog:
        builder = _with_local_metastore(builder)
    builder = builder.config("spark.ui.showConsoleProgress", str(show_progress).lower())
    if not verbose:
        quiet = _joined(defaults, "spark.driver.extraJavaOptions", quiet_logging_option())
        builder = builder.config("spark.driver.extraJavaOptions", quiet)
    spark = builder.getOrCreate()
    require_classic(spark)
    _quiet(spark, verbose)
    return spark


def local_jars(defaults: dict[str, str]) -> str:
    """`spark.jars` of lakescore's own session: spark-defaults.conf's, and Delta's unless they
    (or its `spark.jars.packages`) already hold delta-spark, as on a machine set up without
    Maven Central: there, resolving them again failed every run."""
    given = f"{defaults.get('spark.jars', '')},{defaults.get('spark.jars.packages', '')}"
    has_delta = any(
        "delta-spark_" in part.rsplit("/", 1)[-1] or part.strip().startswith("io.delta:delta-spark")
        for part in given.split(",")
    )
    return _joined(defaults, "spark.jars", *([] if has_delta else delta_jars()))


def spark_defaults() -> dict[str, str]:
    """The settings of the spark-defaults.conf that spark-submit reads when PySpark starts the
    JVM (in SPARK_CONF_DIR, else SPARK_HOME/conf), in Java's properties syntax."""
    from pyspark.find_spark_home import _find_spark_home

    folder = os.environ.get("SPARK_CONF_DIR") or os.path.join(_find_spark_home(), "conf")
    file = Path(folder) / "spark-defaults.conf"
    if not file.is_file():
        return {}
    return java_properties(file.read_text(encoding="utf-8", errors="replace"))


def java_properties(text: str) -> dict[str, str]:
    """`key value`, `key=value` or `key: value` lines as java.util.Properties reads them: `#` and
    `!` comments, a line ending in an odd number of backslashes continued on the next (its
    leading blanks dropped), and backslash escapes (`\\ `, `\\=`, `\\t`, `\\uXXXX`)."""
    settings: dict[str, str] = {}
    logical = ""
    for line in text.splitlines():
        line = line.lstrip(" \t\f")
        if not logical and (not line or line[0] in "#!"):
            continue
        logical += line
        if (len(logical) - len(logical.rstrip("\\"))) % 2:
            logical = logical[:-1]  # continued on the next line
            continue
        key, value = _PROPERTY.match(logical).groups()  # type: ignore[union-attr]
        if key:
            settings[_unescaped(key)] = _unescaped(value)
        logical = ""
    return settings


_PROPERTY = re.compile(r"((?:\\.|[^\s=:\\])*)[ \t\f]*[=:]?[ \t\f]*(.*)", re.DOTALL)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPED = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescaped(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match[1]
        return chr(int(code[1:], 16)) if len(code) == 5 else _ESCAPED.get(code, code)

    return _ESCAPE.sub(one, text)


# Settings that hold lists, joined with what spark-defaults.conf gives them: a builder's value
# replaces the file's, and with it a jar (hadoop-aws), a JVM option (a proxy) or an extension
# the user's other sessions have.
_LISTS = {
    "spark.jars": ",",
    "spark.sql.extensions": ",",
    "spark.driver.extraJavaOptions": " ",
}


def _joined(defaults: dict[str, str], key: str, *ours: str) -> str:
    """`ours` for a setting, after spark-defaults.conf's value of it if the setting is a list."""
    separator = _LISTS.get(key)
    if separator is None:
        return ours[0]
    given = [part.strip() for part in defaults.get(key, "").split(separator) if part.strip()]
    return separator.join([*given, *(part for part in ours if part not in given)])


def _session_of_this_process() -> SparkSession | None:
    """The session a notebook or driver program already runs. The active session belongs to
    a thread (a new thread has none), so a process with a running SparkContext is asked for its
    session without settings: a builder with lakescore's would change the user's session."""
    active = SparkSession.getActiveSession()
    if active is None and SparkContext._active_spark_context is not None:
        active = SparkSession.builder.getOrCreate()
    return active


def quiet_logging_option(log_config: Path | None = None) -> str:
    """The JVM option that points log4j at lakescore's quieter configuration. A file URI: the
    launcher splits the option on whitespace, and a path holding a space broke the JVM's start."""
    if log_config is None:
        log_config = Path(str(resources.files("lakescore").joinpath("log4j2.properties")))
    return f"-Dlog4j2.configurationFile={log_config.resolve().as_uri()}"


def delta_jars() -> list[str]:
    """Local paths of Delta's jars, resolved from Maven Central on first use and then cached.

    Resolution runs in a child process with its output captured, so Ivy's long report stays off
    the terminal; on failure its last lines are part of the error.
    """
    cache_dir = Path(os.environ.get("LAKESCORE_CACHE_DIR", Path.home() / ".cache" / "lakescore"))
    listing = cache_dir / (DELTA_PACKAGE.replace(":", "_") + ".jars")
    if listing.is_file():
        jars = [line for line in listing.read_text().splitlines() if line]  # a home with a space
        if jars and all(Path(j).is_file() for j in jars):
            return jars
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lakescore.resolve_jars"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentProblem(
            f"Resolving {DELTA_PACKAGE} from Maven Central took over 15 minutes."
        ) from exc
    jars = [line for line in done.stdout.splitlines() if line.endswith(".jar")]
    if done.returncode != 0 or not jars:
        raise EnvironmentProblem(
            f"Could not resolve Delta Lake's jars ({DELTA_PACKAGE}) from Maven Central: "
            + resolution_failure(done.stderr)
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    listing.write_text("\n".join(jars) + "\n")
    return jars


def resolution_failure(stderr: str) -> str:
    """Why Spark's package resolution failed, in Ivy's words (`unresolved dependency: ...: not
    found`, `download failed: ...`), rather than the Python traceback that follows them in the
    child's stderr; its last lines when Ivy said nothing."""
    lines = [line.strip() for line in stderr.strip().splitlines()]
    reasons = [line for line in lines if line.startswith(("Exception in thread", "Caused by:"))]
    return " | ".join(reasons or lines[-4:])


def _with_local_metastore(builder: SparkSession.Builder) -> SparkSession.Builder:
    folder = os.environ.get("LAKESCORE_WAREHOUSE_DIR")
    if folder:
        root = Path(folder).resolve()
        builder = builder.config("spark.sql.warehouse.dir", str(root / "warehouse")).config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        )
    return builder.enableHiveSupport()


def require_classic(spark: SparkSession) -> None:
    """Refuse a Spark Connect session before anything talks to it.

    lakescore drives the JVM through the SparkContext (shipping the model archive, listing
    files, Delta's Scala API, cancelling its jobs), which a Connect client does not have; without
    this check a run failed deep inside, or waited on gRPC retries when the server was gone.
    The class is judged by its module, so checking needs none of Connect's gRPC packages.
    """
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        raise _connect_refused()


def _connect_settings() -> list[str]:
    """The environment variables with which PySpark's builder returns a Spark Connect client
    whatever `spark.api.mode` says (named, not shown: a Connect URL can carry a token)."""
    return [name for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED") if name in os.environ]


def _connect_refused() -> EnvironmentProblem:
    settings = _connect_settings()
    source = f" ({' and '.join(settings)} in the environment)" if settings else ""
    return EnvironmentProblem(
        f"lakescore needs a classic Spark session with a SparkContext, not a Spark Connect "
        f"session{source}: it ships the model and drives Delta through the JVM. Databricks "
        "serverless and shared access mode compute give only Connect sessions; run lakescore on "
        "classic compute in single-user access mode, with spark-submit, or with the lakescore "
        "command (without SPARK_REMOTE)."
    )


def require_delta(spark: SparkSession) -> None:
    """Fail clearly when a session we were handed cannot read or write Delta tables.

    Delta needs both its SQL extension and its catalog; without the catalog the first Delta
    query fails with a long AnalysisException. Databricks Runtime has Delta built in, without
    either setting, so its sessions are not checked.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    catalog = spark.conf.get("spark.sql.catalog.spark_catalog", "") or ""
    if "DeltaSparkSessionExtension" not in extensions or "DeltaCatalog" not in catalog:
        raise LakescoreError(
            "The Spark session has no Delta Lake: set spark.sql.extensions="
            "io.delta.sql.DeltaSparkSessionExtension and spark.sql.catalog.spark_catalog="
            "org.apache.spark.sql.delta.catalog.DeltaCatalog, and add the package "
            f"{DELTA_PACKAGE} (see spark_conf/local.conf)."
        )


def require_lasting_catalog(spark: SparkSession) -> None:
    """Refuse catalog tables in a submitted job whose catalog is Spark's in-memory one.

    It forgets the tables when the job ends, and puts a new table's files in the driver's
    `spark-warehouse` folder (a container's, in cluster mode). A cluster's spark-defaults.conf
    usually sets `hive`, but spark-submit ignores that file when given `--properties-file`,
    unless also given `--load-spark-defaults`.
    """
    if spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "in-memory":
        raise UsageError(
            "The deployment names catalog tables, but this Spark session's catalog is in-memory "
            "(spark.sql.catalogImplementation=in-memory): it would forget them when the job "
            "ends. Submit with --load-spark-defaults (the cluster's spark-defaults.conf, which "
            "spark-submit skips when given --properties-file) or "
            "--conf spark.sql.catalogImplementation=hive, or use path: tables."
        )


def check_java() -> None:
    """Spark needs Java 17+; say so plainly instead of failing deep inside the gateway."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise EnvironmentProblem(
            "lakescore needs Java 17 or newer to run Spark: install a JDK and put java on "
            "PATH, or set JAVA_HOME."
        )
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise EnvironmentProblem(f"Could not run {java}: {exc}.") from exc
    match = re.search(r'version "(\d+)', shown)
    if match is None or int(match.group(1)) < 17:
        first = shown.splitlines()[0] if shown else "unknown"
        raise EnvironmentProblem(
            f"lakescore needs Java 17 or newer to run Spark; {java} is {first}."
        )


def _quiet(spark: SparkSession, verbose: bool) -> None:
    spark.sparkContext.setLogLevel("INFO" if verbose else "WARN")


# Spark's default Parquet timestamps are INT96, which delta-rs and polars read as nanoseconds and
# fail on outside 1677-2262 (a 9999-12-31 kept in the quarantine): a borrowed session gets the
# standard type for the run's writes, as lakescore's own sessions have it throughout.
STANDARD_TIMESTAMPS = ("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")


# A session (a notebook's, a cluster's defaults) may skip corrupt or missing files: the rows of
# such a file would be in no table and recorded nowhere. The run reads every file or fails it.
# (A Delta read ignores the reader's options for these: only the session settings reach it.)
EVERY_FILE_READ = (
    ("spark.sql.files.ignoreCorruptFiles", "false"),
    ("spark.sql.files.ignoreMissingFiles", "false"),
)


@contextlib.contextmanager
def session_confs(spark: SparkSession, settings: Iterable[tuple[str, str]]) -> Iterator[None]:
    """`session_conf` of each (key, value) of `settings`, for the block."""
    with contextlib.ExitStack() as stack:
        for key, value in settings:
            stack.enter_context(session_conf(spark, key, value))
        yield


@contextlib.contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a session setting for the pass only: a notebook's session stays the user's.

    Runs in threads of one session share its settings (see shared_state.py); each sets its own
    value as it starts, so two concurrent passes with different values both get the later one's.
    """

    def restore(before: str | None) -> None:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)

    def change() -> str | None:
        before = spark.conf.get(key, None)
        spark.conf.set(key, value)  # first: refused (a Connect session's), nothing is held
        return before

    with changed_while_held(("session setting", id(spark), key), change, restore):
        spark.conf.set(key, value)  # each run its own value (the first's, again)
        yield
