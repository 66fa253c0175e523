"""Storage: reading inputs with file lineage, creating Delta tables, and run-scoped Delta writes.

A run reaches its input, tables and staging through this module (runs.py for the runs table,
commits.py for the run's tables); catalog.py asks the catalog where tables are. The demo writes
its sample files itself, and model_shipping.py zips the model into a local temporary folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakescore import __version__
from lakescore import columns as C
from lakescore.all_null import Path, declared, marked, marked_paths, null_paths
from lakescore.completeness import listed
from lakescore.config import InputConfig
from lakescore.drift import (
    CanonicalColumn,
    canonical_schema,
    case_twins,
    conformed,
    source_column,
)
from lakescore.errors import (
    DeploymentError,
    InputError,
    NoReadableInputError,
    reserved_columns_error,
    spark_error_message,
)
from lakescore.interrupts import carry_local_properties
from lakescore.partitions import kept_types
from lakescore.session import EVERY_FILE_READ, session_conf, session_confs

_log = logging.getLogger(__name__)
# Where Spark's Parquet schema conversion lives (internal to Spark, see _read_footers).
_SPARK_PARQUET = "org.apache.spark.sql.execution.datasources.parquet"
# A column of nanosecond timestamps in a Parquet schema, at any depth (its leaf name).
_NANOS_COLUMN = re.compile(
    r"^\s*(?:optional|required|repeated) int64 (.+) \(TIMESTAMP\(NANOS,", re.MULTILINE
)

FAILED_FILES_SCHEMA = T.StructType(
    [
        T.StructField("path", T.StringType()),
        T.StructField("error", T.StringType()),
        T.StructField(C.RUN_ID, T.StringType()),
        T.StructField("deployment", T.StringType()),
        T.StructField("recorded_at", T.TimestampType()),
        # Last, where Delta's mergeSchema adds them to a table made before they existed.
        T.StructField("attempt", T.IntegerType()),
        T.StructField("attempt_id", T.StringType()),
    ]
)
FAILED_FILES_COMMENTS = {
    "path": "input file that could not be read (its rows are in no table)",
    "error": "why it could not be read",
    C.RUN_ID: "run that tried to read it",
    "deployment": "deployment name",
    "recorded_at": "when the run recorded it (UTC)",
    "attempt": "attempt of the run id that recorded it (the runs table's attempt)",
    "attempt_id": "unique id of that attempt (runs.attempt_id, or in runs.previous_attempts)",
}


def failed_files_path(quarantine_path: str) -> str:
    """The failed-files table lives next to the quarantine table."""
    return quarantine_path.rstrip("/") + C.FAILED_FILES_SUFFIX


@dataclass(frozen=True)
class FailedFile:
    """An input file that could not be read, and why."""

    path: str
    error: str


@dataclass(frozen=True)
class InputData:
    """The input as read: rows with lineage columns, the files behind them, the table version,
    and the files that could not be read (their rows are not in `frame`)."""

    frame: DataFrame
    files: tuple[str, ...]
    table_version: int | None
    failed: tuple[FailedFile, ...] = ()
    # Columns, and paths of struct fields (column first), that every file declares all-null:
    # typed string here, they take a table's own type.
    all_null: frozenset[str] = frozenset()
    null_fields: frozenset[Path] = frozenset()


def failed_records(failed: Sequence[FailedFile]) -> list[dict[str, str]]:
    """Failed files as the run record keeps them (`files_failed`)."""
    return [{"path": f.path, "error": f.error} for f in failed]


@dataclass(frozen=True)
class Commit:
    """What one Delta write committed."""

    version: int
    rows: int
    committed: bool = True  # False: Delta skipped the write (nothing to add, nothing to replace)

    @property
    def recorded_version(self) -> int | None:
        """The version for the run record: None when Delta skipped the write, whose `version`
        is then the table's latest, another run's commit."""
        return self.version if self.committed else None


def read_input(
    spark: SparkSession, config: InputConfig, exclude: Collection[str] = ()
) -> InputData:
    """Read Parquet or Delta; attach each row's source file, its modification time, version.

    Parquet files are read one schema group at a time: a file whose footer cannot be read is
    recorded as failed (the others go on), and files that drifted (types, case, missing or extra
    columns) are projected onto one canonical schema (see drift.py). `exclude` names files that
    failed later, while their rows were being read, so a retry leaves them out entirely.
    """
    if config.format == "delta":
        return _read_delta(spark, config)
    _refuse_delta_as_parquet(spark, config.path)
    left_out = {*exclude, *_completeness_files(spark, config)}
    files = [f for f in list_input_files(spark, config.path) if f not in left_out]
    schemas, failed = _read_footers(spark, config.path, files)
    for path, schema in list(schemas.items()):
        twins = case_twins(schema)
        if twins:  # Spark would fail the whole read naming neither the file nor the run
            del schemas[path]
            failed.append(
                FailedFile(
                    path,
                    f"holds columns {' and '.join(twins)}, whose names differ only in case, "
                    "which Spark (and lakescore) cannot tell apart",
                )
            )
    if not schemas:
        detail = (
            f" ({len(failed)} unreadable: {failed[0].path}: {failed[0].error})" if failed else ""
        )
        raise NoReadableInputError(
            f"Input {config.path} holds no readable parquet files{detail}.", failed_records(failed)
        )
    canonical = canonical_schema(schemas)
    _refuse_lineage_names(c.name for c in canonical)  # before files that drift fail to union
    groups: dict[str, list[str]] = {}
    for path, schema in schemas.items():
        groups.setdefault(schema.json(), []).append(path)
    frames, read = [], []
    for schema_json, paths in groups.items():
        schema = T.StructType.fromJson(json.loads(schema_json))
        # A file removed since its footer was read is recorded, and the group read without it.
        raw, present = _without_removed(
            spark, paths, functools.partial(_read_parquet, spark, config.path, schema)
        )
        failed.extend(
            FailedFile(p, "was removed after the input was listed")
            for p in sorted(set(paths) - set(present))
        )
        if raw is None:
            continue
        paths = present
        try:
            frames.append(raw.select(*_project(canonical, schema), *_lineage(raw, None)))
            read.extend(paths)
        except AnalysisException as exc:  # a column whose type cannot be reconciled
            failed.extend(
                FailedFile(p, f"cannot reconcile its schema: {_first_line(exc)}") for p in paths
            )
    if not frames:
        raise NoReadableInputError(
            f"Input {config.path} holds no readable file whose schema can be reconciled "
            f"({len(failed)} unreadable: {failed[0].path}: {failed[0].error}).",
            failed_records(failed),
        )
    frame = functools.reduce(DataFrame.unionByName, frames)
    all_null = frozenset(c.name for c in canonical if c.all_null)
    null_fields = frozenset(path for c in canonical for path in c.null_fields)
    return InputData(frame, tuple(read), None, tuple(failed), all_null, null_fields)


def _completeness_files(spark: SparkSession, config: InputConfig) -> set[str]:
    """The marker and the manifest (`input.expect`), as the listing names them: they may sit
    among the data files under names Spark does not skip (`READY`), and hold no rows."""
    expect = config.expect
    paths = [f"{config.path.rstrip('/')}/{expect.marker}"] if expect.marker else []
    paths += [expect.manifest] if expect.manifest else []
    found = set()
    for path in paths:
        fs, hadoop_path = _filesystem(spark, path)
        found.add(str(fs.makeQualified(hadoop_path).toString()))
    return found


def _read_parquet(
    spark: SparkSession, folder: str, schema: T.StructType, paths: Sequence[str]
) -> DataFrame:
    return spark.read.schema(schema).option("basePath", folder).parquet(*map(literal_path, paths))


def literal_path(path: str) -> str:
    """A listed file's path as Spark must be given it: Spark expands `?*[]{}` in every path it
    reads as a pattern, so `a?.parquet` would also read `ab.parquet` (its rows twice) and
    `part[1].parquet` would match nothing. Hadoop's patterns take a backslash escape."""
    return re.sub(r"([\\?*\[\]{}])", r"\\\1", path)


def _refuse_delta_as_parquet(spark: SparkSession, folder: str) -> None:
    """A Delta table read as Parquet files gives every version's files at once: rows updated
    or deleted since would be scored again, and the run would succeed.

    The folder is checked, then its parents for as long as it is a partition folder (`k=v`)
    of one: other folders inside a table's (`_exports/`) hold no table files. A check that
    storage refuses (credentials for a prefix only) is no reason to fail the run.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    fs, given = _filesystem(spark, folder)
    path = given
    while path is not None:
        try:
            found = bool(fs.exists(jvm.org.apache.hadoop.fs.Path(path, "_delta_log")))
        except Py4JJavaError:
            return
        if found:
            table = path.toString()
            where = "is" if table == given.toString() else "lies inside"
            raise DeploymentError(
                f"Input {folder} is read as parquet, but it {where} the Delta table {table}, "
                "whose folder holds the files of every version, deleted and replaced rows "
                "included: set input.format: delta (and input.path to the table)."
            )
        path = path.getParent() if "=" in str(path.getName()) else None


def list_input_files(spark: SparkSession, folder: str) -> list[str]:
    """Data files under `folder`, recursively, skipping the names Spark's own listing skips:
    hidden and `_`-prefixed names (`_SUCCESS`, `.crc`, `_delta_log`), except partition folders
    (`_ingest=1`), and files still being copied (`._COPYING_`)."""
    fs, root = _filesystem(spark, folder)
    if not fs.exists(root):
        raise InputError(f"Input {folder} does not exist.")
    if fs.getFileStatus(root).isFile():
        # Spark reads it only with itself as basePath, which it refuses.
        raise DeploymentError(
            f"Input {folder} is a file: input.path (or --input) names the folder of Parquet "
            "files to read; to score one file, put it in a folder of its own."
        )
    prefix = fs.makeQualified(root).toString().rstrip("/")
    found, copying = [], []
    for path in _leaf_paths(fs, root):
        relative = path[len(prefix) :].lstrip("/") if path.startswith(prefix) else path
        *folders, name = relative.split("/")
        _refuse_table_inside(folder, [*folders, name])
        if any(_skipped_name(part) for part in folders):
            continue
        if not _skipped_name(name):
            found.append(path)
        elif name.endswith(_COPYING):
            copying.append(relative)
    if copying:
        # Rows still on their way: this run does not score them, and nothing else says so.
        _log.warning(
            "Input %s: %d file(s) still being copied were not read: %s",
            folder,
            len(copying),
            ", ".join(sorted(copying)[:20]) + (", …" if len(copying) > 20 else ""),
        )
    return sorted(found)


def _refuse_table_inside(folder: str, parts: Sequence[str]) -> None:
    """A Delta table in a folder of the input (`landing/events/_delta_log`) would be read as
    its Parquet files, every version's at once, as the input itself would be if it were one
    (`_refuse_delta_as_parquet`). One inside a folder Spark skips (`_exports/`) is not read."""
    if _DELTA_LOG not in parts:
        return
    table = parts[: parts.index(_DELTA_LOG)]
    if table and not any(_skipped_name(part) for part in table):
        raise DeploymentError(
            f"Input {folder} is read as parquet, but it holds the Delta table "
            f"{folder.rstrip('/')}/{'/'.join(table)}, whose folder holds the files of every "
            "version, deleted and replaced rows included: read that table as a deployment of "
            "its own (input.format: delta), and move it out of this input."
        )


_DELTA_LOG = "_delta_log"


def _skipped_name(name: str) -> bool:
    """Spark's rule (`HadoopFSUtils.shouldFilterOutPathName`), less its exception for Parquet
    summary files (`_metadata`, `_common_metadata`), which hold no rows."""
    return (
        (name.startswith("_") and "=" not in name)
        or name.startswith(".")
        or name.endswith(_COPYING)
    )


_COPYING = "._COPYING_"  # `hadoop fs -put`'s name for a file until its copy completes


def _leaf_paths(fs: Any, root: Any) -> list[str]:
    """Every file under `root`. A local folder is walked with `listStatus`: `listFiles` builds
    a LocatedFileStatus per file, which on the local file system runs a shell command for the
    file's permissions (3.3 s for 1,000 files, against 0.3 s). Elsewhere `listFiles` is the
    efficient listing (on object stores, one flat listing instead of a walk)."""
    if str(fs.getScheme()) != "file":
        listing = fs.listFiles(root, True)
        found = []
        while listing.hasNext():
            found.append(str(listing.next().getPath().toString()))
        return found
    return _local_leaf_paths(fs, root)


def _local_leaf_paths(fs: Any, root: Any) -> list[str]:
    """Every file under a local `root`, each read once however many symbolic links lead to it:
    a link back up (`loop -> ..`, or to `/`) was walked without end, and a link to a folder
    inside the input (`latest -> 2026-11-27`) had its rows scored twice, under two
    `_source_file`s. Each real folder is walked once, under its own name where it has one (the
    walk takes folders reached through no link first), and of a file's names the one through
    no link is kept, else the first by name. Folders Spark skips are not walked: their files
    are not read under their own name, so a link to one (`current -> _v2`) is how they are
    read."""
    qualified = str(fs.makeQualified(root).toString())
    root_real = os.path.realpath(_local_path(qualified))
    walked: set[str] = set()
    by_target: dict[str, list[tuple[bool, str]]] = {}
    files, not_followed = [], []
    plain: list[tuple[Any, str]] = [(root, root_real)]  # folders reached through no link
    linked: list[tuple[Any, str]] = []
    while plain or linked:
        through_link = not plain
        folder, folder_real = (plain or linked).pop()
        above_root = folder_real != root_real and _is_or_above(folder_real, root_real)
        if folder_real in walked or above_root:
            not_followed.append(str(folder.toString()))  # read under another name, or a loop
            continue
        walked.add(folder_real)
        for status in fs.listStatus(folder):
            path = status.getPath()
            name = str(path.toString())
            local = _local_path(name)
            base = local.rsplit("/", 1)[1]
            is_link = os.path.islink(local)
            real = os.path.realpath(local) if is_link else os.path.join(folder_real, base)
            if _skipped_name(base):
                if not status.isDirectory() or base == _DELTA_LOG:
                    files.append(name)  # for list_input_files to skip, warn of, or refuse
            elif status.isDirectory() and _is_or_above(real, folder_real):
                not_followed.append(name)  # a loop: it leads back up to where it is
            elif status.isDirectory():
                (linked if through_link or is_link else plain).append((path, real))
            else:
                by_target.setdefault(real, []).append((through_link or is_link, name))
    for names in by_target.values():
        kept = min(names)  # the name through no link (False sorts first), else the first by name
        files.append(kept[1])
        not_followed += [name for _, name in names if name != kept[1]]
    if not_followed:
        prefix = qualified.rstrip("/") + "/"
        shown = sorted(name.removeprefix(prefix) for name in not_followed)
        _log.warning(
            "Input %s: %d symbolic link(s) lead to files read under another name, or to a "
            "folder holding the input, and were not followed: %s",
            _local_path(qualified),
            len(shown),
            ", ".join(shown[:20]) + (", …" if len(shown) > 20 else ""),
        )
    return files


def _is_or_above(folder: str, path: str) -> bool:
    """Whether the local `folder` is `path` or a folder above it."""
    return folder == path or path.startswith(folder.rstrip("/") + "/")


def _local_path(hadoop_path: str) -> str:
    """A local file's path from Hadoop's `file:/x` (Hadoop's paths are not percent-encoded)."""
    local = hadoop_path.removeprefix("file:")
    return "/" + local.lstrip("/") if local.startswith("//") else local


def relative_names(spark: SparkSession, folder: str, files: Sequence[str]) -> dict[str, str]:
    """Each file's path relative to `folder` (as a manifest names it)."""
    fs, root = _filesystem(spark, folder)
    prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
    return {f: f[len(prefix) :] if f.startswith(prefix) else f for f in files}


def names_read_as(
    spark: SparkSession, folder: str, expected: Sequence[str], read: Collection[str]
) -> dict[str, str]:
    """Each of the `expected` names (a manifest's, relative to `folder`) that is not among the
    `read` ones but is the same local file by another name, and that name: a local file
    reached by several names is read under one (see `_local_leaf_paths`), and a manifest
    naming it through a link (`latest/a.parquet`) must still find it."""
    fs, root = _filesystem(spark, folder)
    if str(fs.getScheme()) != "file":
        return {}
    base = _local_path(str(fs.makeQualified(root).toString()))
    unmatched = [name for name in expected if name not in read]
    if not unmatched:
        return {}
    by_real = {os.path.realpath(os.path.join(base, name)): name for name in read}
    found = {name: by_real.get(os.path.realpath(os.path.join(base, name))) for name in unmatched}
    return {name: as_read for name, as_read in found.items() if as_read is not None}


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hadoop_path = _filesystem(spark, path)
    return bool(fs.exists(hadoop_path))


def _existing(spark: SparkSession, paths: Sequence[str]) -> list[str]:
    """Those of one input's `paths` that exist, asked of one FileSystem (each `path_exists`
    builds the session's Hadoop configuration anew)."""
    if not paths:
        return []
    fs, _ = _filesystem(spark, paths[0])
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return [path for path in paths if fs.exists(jvm.org.apache.hadoop.fs.Path(path))]


def _without_removed(
    spark: SparkSession, paths: Sequence[str], read: Callable[[list[str]], DataFrame]
) -> tuple[DataFrame | None, list[str]]:
    """`read` of those of `paths` still there (None if none is), and which those were.

    Spark checks every path exists before it reads any, so one file removed since the input was
    listed (a producer replacing its output) failed the whole run with PATH_NOT_FOUND. Asked
    again until no more are gone: a file can go between one check and the next read too.
    """
    present = list(paths)
    while True:
        try:
            return (read(present) if present else None), present
        except AnalysisException as exc:
            if "PATH_NOT_FOUND" not in str(exc):
                raise
            still = _existing(spark, present)
            if len(still) == len(present):  # not one of these: another path is missing
                raise
            present = still


def _filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem for `path` and its Path: what works on any storage Spark can read,
    with the settings Spark's own reads of it use (`_session_hadoop_conf`)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(_session_hadoop_conf(spark)), hadoop_path


def _session_hadoop_conf(spark: SparkSession) -> Any:
    """The SparkContext's Hadoop configuration with the session's settings on top, as Spark
    builds it for a read: a notebook's `spark.conf.set("fs.azure.account.key...", ...)` is in
    it, and the SparkContext's alone lacks it (the listing and the checks failed on storage
    Spark itself read)."""
    return spark._jsparkSession.sessionState().newHadoopConf()


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small text file (a manifest) from any storage Spark can read; None if there is none."""
    if not path_exists(spark, path):
        return None
    return "\n".join(row[0] for row in spark.read.text(literal_path(path)).collect())


def fails_read_alone(spark: SparkSession, path: str) -> bool:
    """Whether a Parquet file fails read on its own, every column of every row, as the pass
    reads it (corrupt or missing files fail): a file that reads now failed the pass on an error
    storage does not repeat (a reset connection; `local[*]` retries no task)."""
    with session_confs(spark, EVERY_FILE_READ):
        try:
            spark.read.parquet(literal_path(path)).write.format("noop").mode("overwrite").save()
        except (Py4JJavaError, PySparkException) as exc:
            text = str(exc.java_exception) if isinstance(exc, Py4JJavaError) else str(exc)
            if failed_file_in(text, [path]) is None:
                raise  # not the file's (its job cancelled from Spark's UI, say)
            return True
    return False


def failed_file_in(error_text: str, files: Sequence[str]) -> str | None:
    """Which of `files` a Spark read error names, if any (Spark names the file it failed on).

    The longest name found wins: `part_0` is a prefix of `part_0_copy_1`, and an error about
    the second must not blame the first.
    """
    named = []
    # Spark names the file by its URI, which encodes a space but keeps `=`, `+` and non-ASCII
    # letters as they are: neither the listed path nor quote() of it need appear verbatim.
    decoded = unquote(error_text)
    for path in files:
        bare = path.split(":", 1)[1].lstrip("/") if ":" in path else path.lstrip("/")
        if bare and (bare in error_text or quote(bare) in error_text or bare in decoded):
            named.append((len(bare), path))
    return max(named)[1] if named else None


def _read_delta(spark: SparkSession, config: InputConfig) -> InputData:
    try:
        table_version = _latest_version(spark, config.path)
        raw = spark.read.format("delta").option("versionAsOf", table_version).load(config.path)
    except AnalysisException as exc:
        raise InputError(_input_error(config, exc)) from exc
    _refuse_lineage_names(raw.columns)
    frame = raw.select("*", *_lineage(raw, table_version))
    return InputData(frame, tuple(raw.inputFiles()), table_version)


def _read_footers(
    spark: SparkSession, folder: str, files: Sequence[str]
) -> tuple[dict[str, T.StructType], list[FailedFile]]:
    """Each file's schema from its footer, eight at a time; a file that fails is recorded, not
    fatal.

    On the driver with Parquet's footer reader and Spark's conversion of its schema, the two calls
    Spark's own schema inference makes, through any file system Hadoop reaches. A Spark read per
    file gave the same schemas but cost a job each (about 20 ms: 1,000 small files took 20 s,
    against 2 s). Files in partition folders (`key=value/`) are left to Spark, which adds the
    partition columns to their schema.
    """
    names = relative_names(spark, folder, files).values()
    if any("=" in part for name in names for part in name.split("/")[:-1]):
        schemas, failed = _schemas_by_spark(spark, folder, files)
        types = _partition_types(spark, folder, list(schemas), list(names))
        nulls = _all_null_columns(spark, list(schemas))
        return {
            path: marked(_retyped(schema, types), nulls.get(path, set()))
            for path, schema in schemas.items()
        }, failed
    try:
        return _collect_schemas(files, _footer_reader(spark))
    except Exception as exc:
        if not _missing_call(exc):
            raise
        # Spark's schema conversion is internal: a Spark without these calls reads as before.
        _log.warning("reading Parquet footers through Spark: %s", _first_line(exc))
        return _schemas_by_spark(spark, folder, files)


def _partition_types(
    spark: SparkSession, folder: str, files: Sequence[str], names: Sequence[str]
) -> dict[str, T.DataType]:
    """The partition columns' types as Spark infers them from all `key=value` folders at once,
    each kept only if it reads every folder's value back as written (see partitions.py).

    Read file by file, `code=007` is the int 7 while `code=A12` is a string, and widening then
    keeps "7". With a schema given, Spark opens no file; given one readable file of each folder
    rather than the input's folder, it lists nothing either, so it follows no symbolic link the
    listing did not (a `loop -> ..` was walked until the path grew too long).
    """
    # The folders' names are all that count. Spark checks each path exists: a file removed
    # since it was listed is left out (reading records it), another of its folder stands in.
    try:
        frame, _ = _without_removed(
            spark, files, lambda present: _partition_probe(spark, folder, _one_per_folder(present))
        )
    except PySparkException as exc:
        if exc.getCondition() != "CONFLICTING_DIRECTORY_STRUCTURES":
            raise
        # Spark's message names no folder in its first line, and lower-cases those it lists.
        folders = sorted({name.rpartition("/")[0] or "." for name in names})
        raise InputError(
            f"Input {folder} mixes partition folders (key=value) with other folders, or "
            f"partition folders of different depths, which Spark cannot read as one table; its "
            f"data files are in {listed(folders, _FOLDERS_SHOWN)}. Put every data file at the "
            "same depth of key=value folders, or point input.path at one of them."
        ) from exc
    fields = frame.schema.fields if frame is not None else []  # none readable: none to type
    inferred = {f.name: f.dataType for f in fields if f.name != _PROBE}
    return kept_types(inferred, names)


_PROBE = "__lakescore_probe"  # a column name no input uses (pipeline refuses its prefix)


def _one_per_folder(files: Sequence[str]) -> list[str]:
    return sorted({path.rpartition("/")[0]: path for path in files}.values())


def _partition_probe(spark: SparkSession, folder: str, files: Sequence[str]) -> DataFrame:
    return (
        spark.read.schema(f"`{_PROBE}` string")
        .option("basePath", folder)
        .parquet(*map(literal_path, files))
    )


_FOLDERS_SHOWN = 6


def _retyped(schema: T.StructType, types: Mapping[str, T.DataType]) -> T.StructType:
    return T.StructType(
        [T.StructField(f.name, types.get(f.name, f.dataType), f.nullable) for f in schema.fields]
    )


def _missing_call(exc: BaseException) -> bool:
    """Py4J could not find a class or method (this Spark lacks it); not an error from the JVM."""
    return isinstance(exc, Py4JError | TypeError) and not isinstance(exc, Py4JJavaError)


def _footer_reader(spark: SparkSession) -> Callable[[str], T.StructType | FailedFile]:
    """Reads one file's schema the way Spark infers it, or records why it cannot."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    session = spark._jsparkSession
    hadoop_conf = _session_hadoop_conf(spark)
    parquet = functools.reduce(getattr, _SPARK_PARQUET.split("."), jvm)
    converter = parquet.ParquetToSparkSchemaConverter(session.sessionState().conf())
    metadata_converter = jvm.org.apache.parquet.format.converter.ParquetMetadataConverter
    skip_row_groups = metadata_converter.SKIP_ROW_GROUPS

    def footer(path: str) -> T.StructType | FailedFile:
        parquet_schema = ""
        try:
            hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
            metadata = jvm.org.apache.parquet.hadoop.ParquetFileReader.readFooter(
                hadoop_conf, hadoop_path, skip_row_groups
            )
            parquet_schema = str(metadata.getFileMetaData().getSchema().toString())
            schema = parquet.ParquetFileFormat.readSchemaFromFooter(
                jvm.org.apache.parquet.hadoop.Footer(hadoop_path, metadata), converter
            )
            # Spark reads every file column as nullable, whatever the footer says.
            spark_schema = T.StructType.fromJson(json.loads(schema.asNullable().json()))
            # A column or struct field pyarrow wrote all-null (Parquet's null type, UNKNOWN in
            # the text form) is read as int; all_null.py marks it to have no say in the type.
            return marked(spark_schema, null_paths(parquet_schema))
        except Exception as exc:  # any reason a file cannot be read is recorded with the file
            if _missing_call(exc):
                raise  # the call is missing, not the file broken: the caller falls back
            return FailedFile(path, _explained(spark_error_message(exc), parquet_schema))

    return footer


def _explained(error: str, parquet_schema: str = "") -> str:
    """Spark's error about a file, and for nanosecond timestamps (what pandas' and pyarrow's
    `to_parquet` and `write_table` write by default, which Spark cannot read) the columns and
    the remedy."""
    if "TIMESTAMP(NANOS" not in error:
        return error
    columns = _NANOS_COLUMN.findall(parquet_schema)
    named = f"Column(s) {', '.join(columns)} hold" if columns else "It holds"
    return (
        f"{error} {named} nanosecond timestamps, which Spark cannot read: write them in "
        "microseconds (pyarrow.parquet.write_table or pandas' to_parquet with "
        "coerce_timestamps='us', and allow_truncated_timestamps=True to drop the nanoseconds)."
    )


def _all_null_columns(spark: SparkSession, files: Sequence[str]) -> dict[str, set[Path]]:
    """Each file's all-null columns and struct fields, from its footer (for files whose schemas
    Spark read, in partition folders); nothing where this Spark lacks the footer calls."""
    try:
        schemas, _ = _collect_schemas(files, _footer_reader(spark))
    except Exception as exc:
        if not _missing_call(exc):
            raise
        return {}
    return {path: marked_paths(schema) for path, schema in schemas.items()}


def _schemas_by_spark(
    spark: SparkSession, folder: str, files: Sequence[str]
) -> tuple[dict[str, T.StructType], list[FailedFile]]:
    """Each file's schema as a Spark read of that file alone sees it: one Spark job per file."""

    def footer(path: str) -> T.StructType | FailedFile:
        try:
            return spark.read.option("basePath", folder).parquet(literal_path(path)).schema
        except Exception as exc:  # any reason a file cannot be read is recorded with the file
            return FailedFile(path, _explained(spark_error_message(exc)))

    return _collect_schemas(files, carry_local_properties(spark, footer))


def _collect_schemas(
    files: Sequence[str], footer: Callable[[str], T.StructType | FailedFile]
) -> tuple[dict[str, T.StructType], list[FailedFile]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        try:
            results = list(pool.map(footer, files))
        except BaseException:  # a stopped run does not wait for the files still queued
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    schemas = {p: r for p, r in zip(files, results, strict=True) if isinstance(r, T.StructType)}
    failed = [r for r in results if isinstance(r, FailedFile)]
    return schemas, failed


def _project(canonical: Sequence[CanonicalColumn], schema: T.StructType) -> list[Column]:
    """Select a file's columns under their canonical names and types; absent ones are null."""
    columns = []
    fields = {field.name: field for field in schema.fields}
    for column in canonical:
        source = source_column(column.name, schema)
        # As the file declares it: a column or struct field it holds no value of is a typed null.
        value = (
            F.lit(None).cast(column.data_type)
            if source is None
            else conformed(F.col(C.quoted(source)), declared(fields[source]), column.data_type)
        )
        columns.append(value.alias(column.name))
    return columns


def _refuse_lineage_names(columns: Iterable[str]) -> None:
    """An input column named like a lineage column, in any case, would be in each row twice
    once the lineage is added (Spark compares names without regard to case): every later
    reference to it would be ambiguous."""
    shadowing = [c for c in columns if c.lower() in C.SOURCE_LINEAGE]
    if shadowing:
        raise reserved_columns_error(shadowing)


def _lineage(frame: DataFrame, table_version: int | None) -> list[Column]:
    """Each row's file, through Spark's metadata column: by name, `_metadata` would be the
    input's own column of that name where it has one (an Auto Loader bronze table keeps the
    landing file's `_metadata`), and every row's lineage would name the wrong file."""
    files = frame.metadataColumn("_metadata")
    return [
        files.getField("file_path").alias(C.SOURCE_FILE),
        files.getField("file_modification_time").alias(C.SOURCE_FILE_MODIFIED_AT),
        F.lit(table_version).cast("bigint").alias(C.SOURCE_TABLE_VERSION),
    ]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:500]


def lakescore_properties(deployment: str) -> dict[str, str]:
    """The table properties that say which deployment and lakescore version made a table."""
    return {"lakescore.deployment": deployment, "lakescore.version": __version__}


def ensure_delta_table(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    comments: Mapping[str, str],
    properties: Mapping[str, str] | None = None,
    table_name: str | None = None,
) -> None:
    """Create the table with an explicit schema and column comments if it does not exist yet,
    registered in the catalog as `table_name` when one is given.

    Table features that delta-rs cannot read or append to (deletion vectors, type widening,
    row tracking, in-commit timestamps, v2 checkpoints, column mapping) stay off even where
    the session turns them on for new tables; run-scoped overwrites need none of them. An
    existing table is left as it is, except that a new timestamp_ntz column gets Delta's
    feature for it (a write cannot add one otherwise).
    """
    from delta.tables import DeltaTable

    registered = table_name is None or spark.catalog.tableExists(table_name)
    if DeltaTable.isDeltaTable(spark, path):
        if not registered:
            _register(spark, str(table_name), path)
        _allow_new_timestamp_ntz(spark, path, schema)
        return  # later writes add new columns with mergeSchema; existing ones keep their type
    builder = DeltaTable.createIfNotExists(spark)
    if table_name:
        builder = builder.tableName(table_name)
    builder = builder.location(path)
    for field in schema.fields:
        builder = builder.addColumn(
            field.name, field.dataType, nullable=True, comment=comments.get(field.name)
        )
    for key, value in {**_FEATURES_OFF, **(properties or {})}.items():
        builder = builder.property(key, value)
    try:
        retry_on_conflict(builder.execute, f"creating {path}")
    except Exception:
        if not _created_by_another_writer(spark, path):
            raise
        # Another run created it at the same moment: use theirs (same schema, same run-scoped
        # writes); register the name if that run used the path only.
        if table_name and not spark.catalog.tableExists(table_name):
            _register(spark, table_name, path)


# Set on every new table, so that `spark.databricks.delta.properties.defaults.*` turns none on.
_FEATURES_OFF = {
    "delta.enableDeletionVectors": "false",
    "delta.enableTypeWidening": "false",
    "delta.enableRowTracking": "false",
    "delta.enableInCommitTimestamps": "false",
    "delta.checkpointPolicy": "classic",
    "delta.columnMapping.mode": "none",
    # ...defaults.feature.X=supported and ...defaults.minReaderVersion add features without a
    # property: not to this table (what its own properties and columns need is still added).
    "delta.ignoreProtocolDefaults": "true",
}


def _register(spark: SparkSession, table_name: str, path: str) -> None:
    """Name the Delta table at `path` in the catalog."""
    from lakescore.catalog import quoted

    spark.sql(f"CREATE TABLE {quoted(table_name)} USING DELTA LOCATION '{_sql_string(path)}'")


def table_schema(spark: SparkSession, path: str) -> T.StructType | None:
    """The schema of the Delta table at `path`, or None when there is none yet."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path).schema


def _allow_new_timestamp_ntz(spark: SparkSession, path: str, schema: T.StructType) -> None:
    """Enable Delta's timestampNtz feature when `schema` brings the table its first such column."""
    if not _has_timestamp_ntz(schema):
        return
    if _has_timestamp_ntz(table_schema(spark, path) or T.StructType()):
        return  # the table has the feature already
    retry_on_conflict(
        lambda: spark.sql(
            f"ALTER TABLE delta.`{path.replace('`', '``')}` "
            "SET TBLPROPERTIES ('delta.feature.timestampNtz' = 'supported')"
        ),
        f"enabling timestamp_ntz on {path}",
    )


def _has_timestamp_ntz(schema: T.StructType) -> bool:
    """Whether any column, or any field nested in one, is a timestamp_ntz (by type: a column
    may be named `event_timestamp_ntz`)."""
    pending: list[T.DataType] = [schema]
    while pending:
        data_type = pending.pop()
        if isinstance(data_type, T.TimestampNTZType):
            return True
        if isinstance(data_type, T.StructType):
            pending += [f.dataType for f in data_type.fields]
        elif isinstance(data_type, T.ArrayType):
            pending.append(data_type.elementType)
        elif isinstance(data_type, T.MapType):
            pending += [data_type.keyType, data_type.valueType]
    return False


def _created_by_another_writer(spark: SparkSession, path: str) -> bool:
    """After our create failed: is the table there now, made by a run creating it at the same
    moment? While the other creator writes its first commit, the folder holds a `_delta_log`
    but no commit yet, and Delta refuses to create a table there: then wait up to 10 s for
    that commit."""
    from delta.tables import DeltaTable

    if DeltaTable.isDeltaTable(spark, path):
        return True
    if not path_exists(spark, f"{path.rstrip('/')}/_delta_log"):
        return False
    for _ in range(50):
        time.sleep(0.2)
        if DeltaTable.isDeltaTable(spark, path):
            return True
    return False


def replace_run_rows(
    frame: DataFrame, path: str, run_column: str, run_id: str, user_metadata: Mapping[str, Any]
) -> Commit:
    """Atomically replace every row of `run_id` in the table with `frame` (an idempotent rerun),
    and report the version and row count of that commit.

    Every commit carries `user_metadata` (with the run id) in Delta's `userMetadata`.
    """
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(frame.sparkSession, path)
    before = _newest_version(table)
    metadata = overwrite_run_rows(frame, path, run_column, run_id, user_metadata)
    ours = _commit_since(table, metadata, before)
    if ours is None:
        # Delta skips the commit when there was nothing to add and nothing to replace.
        return Commit(version=_newest_version(table), rows=0, committed=False)
    metrics = ours["operationMetrics"] or {}
    version = int(ours["version"])
    if "numOutputRows" not in metrics:
        # A session with spark.databricks.delta.history.metricsEnabled=false: count instead.
        rows = (
            frame.sparkSession.read.format("delta")
            .option("versionAsOf", version)
            .load(path)
            .where(F.col(run_column) == run_id)
            .count()
        )
        return Commit(version=version, rows=rows)
    # When the replaced rows share a file with other runs' (after OPTIMIZE or auto-compaction),
    # Delta rewrites that file and counts the other runs' rows it copied as output too.
    rows = int(metrics["numOutputRows"]) - int(metrics.get("numCopiedRows", 0) or 0)
    return Commit(version=version, rows=rows)


def committed_version(
    spark: SparkSession, path: str, user_metadata: Mapping[str, Any]
) -> int | None:
    """The version of the table's commit that carries `user_metadata`, or None if there is none
    (or no table): how a writer that failed after Delta committed (Ctrl-C, or a cancelled job,
    while it read its version back) finds what it must take back."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)
    # Deeper than a successful write's search: other writers went on committing while the run
    # waited for its other commits (a conflict's retries take a minute).
    ours = _commit_carrying(table, _metadata_text(user_metadata), depth=1000)
    return None if ours is None else int(ours["version"])


def _commit_since(table: Any, metadata: str, before: int) -> Row | None:
    """The commit after version `before` whose userMetadata is `metadata`: usually the newest
    (one commit file to read), else among every commit since `before` (other writers committed
    after it, however many)."""
    latest: Row | None = table.history(1).first()
    if latest is None or int(latest["version"]) <= before:
        return None
    if latest["userMetadata"] == metadata:
        return latest
    newest = int(latest["version"])
    while True:
        # history(n) is the newest n commits when it is read: if others committed since
        # `newest`, the window no longer reaches back to `before`, so read again, deeper.
        commits: list[Row] = (
            table.history(newest - before).where(F.col("version") > before).collect()
        )
        ours = [commit for commit in commits if commit["userMetadata"] == metadata]
        if ours:
            return max(ours, key=lambda commit: int(commit["version"]))
        versions = [int(commit["version"]) for commit in commits]
        if not versions or min(versions) <= before + 1:
            return None
        newest = max(versions)


def _newest_version(table: Any) -> int:
    return int(table.history(1).first()["version"])


def _commit_carrying(table: Any, metadata: str, depth: int) -> Row | None:
    """The latest of the table's last `depth` commits whose userMetadata is `metadata`."""
    history: DataFrame = table.history(depth)
    return history.where(F.col("userMetadata") == metadata).orderBy(F.desc("version")).first()


def revert_run_rows(
    spark: SparkSession,
    path: str,
    run_column: str,
    run_id: str,
    version: int,
    user_metadata: Mapping[str, Any],
) -> None:
    """Undo the commit `version` for one run: its rows become those it had in the version
    before (none, if the run id was new). Other runs' rows are not touched.

    Delta refuses to read a version committed longer ago than the table's
    `delta.deletedFileRetentionDuration` (7 days), lest VACUUM have removed its files: a
    weekly job's table, or a quarantine that rarely gets rows, kept a failed run's rows. The
    version before `version` was the latest until this run's commit, so none of its files can
    have been vacuumed; the guard is lifted for this read.
    """
    if _files_removed_by(spark, path, version) == 0:
        # The run id had no rows before (its first attempt; each commit writes files of one
        # run): they are removed, without reading a version whose log files Delta's cleanup may
        # have removed (older than delta.logRetentionDuration, 30 days: a monthly job's).
        nothing = spark.read.format("delta").load(path).where(F.lit(False))
        overwrite_run_rows(nothing, path, run_column, run_id, user_metadata)
        return
    with session_conf(spark, _TIME_TRAVEL_GUARD, "false"):
        before = (
            spark.read.format("delta")
            .option("versionAsOf", version - 1)
            .load(path)
            .where(F.col(run_column) == run_id)
        )
        overwrite_run_rows(before, path, run_column, run_id, user_metadata)


def _files_removed_by(spark: SparkSession, path: str, version: int) -> int | None:
    """How many files the commit `version` removed, as its history says (None if unsaid)."""
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    # Some depth to spare: another writer may commit between the two reads of the history.
    history: DataFrame = table.history(_newest_version(table) - version + 100)
    commit = history.where(F.col("version") == version).first()
    removed = (commit["operationMetrics"] or {}).get("numRemovedFiles") if commit else None
    return int(removed) if removed is not None else None


_TIME_TRAVEL_GUARD = (
    "spark.databricks.delta.vacuum.enforceTimeTravelWithinDeletedFileRetentionDuration"
)


def overwrite_run_rows(
    frame: DataFrame, path: str, run_column: str, run_id: str, user_metadata: Mapping[str, Any]
) -> str:
    """The commit of `replace_run_rows`, without looking it up afterwards (the run record's own
    writes need no version). Returns the userMetadata written."""
    predicate = f"`{run_column}` = '{_sql_string(run_id)}'"
    metadata = _metadata_text(user_metadata)
    writer = (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .option("mergeSchema", "true")
        .option("userMetadata", metadata)
    )
    retry_on_conflict(lambda: writer.save(path), f"writing run {run_id} to {path}")
    return metadata


def _metadata_text(user_metadata: Mapping[str, Any]) -> str:
    return json.dumps(dict(user_metadata), sort_keys=True)


_CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


def retry_on_conflict(commit: Callable[[], object], what: str, attempts: int = 12) -> None:
    """Retry a Delta commit that lost an optimistic-concurrency race to another writer.

    Each retry re-reads the table, so a run-scoped replaceWhere still replaces exactly its own
    rows. Waits grow from 0.2 s to about 10 s, with jitter so two losers do not collide again.
    """
    for attempt in range(attempts):
        try:
            commit()
            return
        except Exception as exc:
            text = f"{type(exc).__name__} {exc}"
            if attempt == attempts - 1 or not any(name in text for name in _CONFLICTS):
                raise
            _log.info("conflict while %s (attempt %d), retrying: %s", what, attempt + 1, text)
            time.sleep(min(0.2 * 2**attempt, 10.0) * random.uniform(0.5, 1.5))


def read_table(spark: SparkSession, path: str) -> DataFrame | None:
    """A Delta table by path, or None when there is none there yet."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path)


def _latest_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    # Asked of the storage the path names (a path without a scheme is on the cluster's default
    # file system, HDFS or DBFS, not the driver's disk), as every other input check is.
    if not path_exists(spark, path):
        raise InputError(f"Input {path} does not exist.")
    if not DeltaTable.isDeltaTable(spark, path):
        raise InputError(f"Input {path} is not a Delta table (no _delta_log).")
    return int(DeltaTable.forPath(spark, path).history(1).collect()[0]["version"])


def _input_error(config: InputConfig, exc: AnalysisException) -> str:
    text = str(exc).splitlines()[0]
    if "UNABLE_TO_INFER_SCHEMA" in text or "Unable to infer schema" in text:
        return f"Input {config.path} holds no readable {config.format} files."
    if "PATH_NOT_FOUND" in text:
        return f"Input {config.path} does not exist."
    return f"Input {config.path} could not be read as {config.format}: {text}"


def _sql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def staging_path(output_path: str, deployment: str, run_id: str) -> str:
    """Where a run keeps its scored rows between scoring and committing: beside the output table
    (never inside it), one folder per deployment and run, replaced by a rerun."""
    parent = output_path.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/_lakescore_staging/{deployment}/{staging_folder_name(run_id)}"


def staging_folder_name(run_id: str) -> str:
    """A run id as a folder name: its `:` written `%3A` (HDFS refuses a `:` in a name; `_` would
    give `a:b` and `a_b` one folder)."""
    return run_id.replace(":", "%3A")


def attempt_staging_path(run_staging: str, attempt: int, attempt_id: str) -> str:
    """One attempt's staging folder; the attempt number first, so older ones are known."""
    return f"{run_staging}/{attempt:06d}-{attempt_id}"


def delete_staging(spark: SparkSession, run_staging: str, attempt: int, own: str) -> None:
    """Delete this attempt's staging folder and those of older attempts of the run (superseded:
    they can no longer commit), then the run's folder once it is empty. A newer attempt's
    folder is left alone: that attempt may be writing or committing it right now, and it may
    have been created since the listing, so the run's folder goes only if it is still empty."""
    delete_path(spark, own)
    fs, folder = _filesystem(spark, run_staging)
    if not fs.exists(folder):
        return
    remaining = 0
    for status in fs.listStatus(folder):
        number = status.getPath().getName().split("-", 1)[0]
        if not number.isdigit() or int(number) < attempt:
            fs.delete(status.getPath(), True)
        else:
            remaining += 1
    if remaining == 0:
        try:
            fs.delete(folder, False)
        except Py4JJavaError:  # not empty any more (a newer attempt's folder), or storage said no
            _log.debug("kept the staging folder %s", run_staging, exc_info=True)


def write_staging(frame: DataFrame, path: str) -> None:
    """Materialise the scored rows once, so both commits read them instead of re-scoring."""
    frame.write.mode("overwrite").parquet(path)


def read_staging(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.parquet(path)


def delete_path(spark: SparkSession, path: str) -> None:
    """Remove a folder through Hadoop's FileSystem, so it works for any storage Spark can write."""
    fs, hadoop_path = _filesystem(spark, path)
    fs.delete(hadoop_path, True)
