"""Names of lineage, error and run-table columns, in one place.

Lineage columns start with ``_`` so they rarely collide with user columns; an input column
named like one is refused before the run reads a row.
"""

from __future__ import annotations

RUN_ID = "_run_id"
MODEL_NAME = "_model_name"
MODEL_VERSION = "_model_version"
MODEL_URI = "_model_uri"
SCORED_AT = "_scored_at"
SOURCE_FILE = "_source_file"
SOURCE_FILE_MODIFIED_AT = "_source_file_modified_at"
SOURCE_TABLE_VERSION = "_source_table_version"
ERRORS = "_errors"
WARNINGS = "_warnings"
QUARANTINED_AT = "_quarantined_at"
# The failed-files table is the quarantine table's path (or catalog name) with this suffix.
FAILED_FILES_SUFFIX = "_failed_files"
# Working columns of a run's staged scores (never in the committed tables).
SCORE_ERROR = "_score_error"
FAILED_INPUT = "_failed_input"
FLAGS = "_flags"  # the warn and fail rules a row broke
EXECUTOR = "_executor"  # which executor (host/id) scored the row
TASK = "_task"  # which task attempt scored it

# Error struct fields, and the stages an error can come from. A file that cannot be read has
# no rows to quarantine: it is recorded whole (files_failed, the failed-files table), so no
# row's error has the `read` stage the design names.
STAGE_VALIDATE = "validate"
STAGE_SCORE = "score"
RULE_MODEL_ERROR = "model_error"
# Names of the built-in checks that come from the model's signature.
RULE_TYPE = "type_mismatch"
RULE_REQUIRED = "required_null"
RULE_NAN = "nan"
RULE_INFINITE = "infinite"
# A deployment's rule may not take these names: its rows would be counted as theirs.
BUILT_IN_RULES = (RULE_TYPE, RULE_REQUIRED, RULE_NAN, RULE_INFINITE, RULE_MODEL_ERROR)

# Input lineage columns added when the input is read (not user columns).
SOURCE_LINEAGE = (SOURCE_FILE, SOURCE_FILE_MODIFIED_AT, SOURCE_TABLE_VERSION)

DEFAULT_PREDICTION = "prediction"

COMMENTS: dict[str, str] = {
    RUN_ID: "lakescore run that wrote this row",
    MODEL_NAME: "registered model name (null for a run or local-path model)",
    MODEL_VERSION: "model version pinned for the run (run id or content hash when unregistered)",
    MODEL_URI: "model URI pinned for the run",
    SCORED_AT: "driver time at which the run scored its rows (UTC)",
    SOURCE_FILE: "input file the row was read from",
    SOURCE_FILE_MODIFIED_AT: "modification time of the input file",
    SOURCE_TABLE_VERSION: "version of the Delta input table that was read",
    ERRORS: "why the row was quarantined: stage, rule, column, message",
    QUARANTINED_AT: "driver time at which the run quarantined the row (UTC)",
}


def quoted(name: str) -> str:
    """`name` as one Spark SQL identifier, whatever it holds (dots, spaces, backticks)."""
    return "`" + name.replace("`", "``") + "`"
