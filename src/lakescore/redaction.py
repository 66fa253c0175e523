"""Keep secrets out of everything lakescore writes or prints, and mask sensitive quarantine columns.

`scrub` removes credentials from URIs and key=value text (run records, errors, progress lines,
Delta userMetadata). `redact_columns` replaces values with a stable SHA-256, so duplicates stay
findable while the values themselves never land in the quarantine table.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakescore.columns import quoted

# user:password@ in any URI (the user may be empty: `https://:TOKEN@host`); the password up to
# the authority's last `@` (one written with a raw `@` in it). Without a password, the user part
# is masked for http(s) only, where it is a token (`https://TOKEN@host`): in
# `abfss://container@account` it names the storage. A scheme has at most 32 characters: tried at
# every letter of a long word, an unbounded one took time growing with the word's square.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/@\s:]*:[^/\s]+@")
_HTTP_TOKEN = re.compile(r"(?P<scheme>(?i:https?)://)[^/@\s:]+@")
# A name ending in one of these, with anything before it (`refresh_token`, `sessionToken`,
# `fs.s3a.secret.key`, Azure's `AccountKey` and `SharedAccessKey`) and Hadoop's dotted
# suffixes after it (`fs.azure.account.key.ACCOUNT.dfs.core.windows.net`), but not a partition
# folder's (`/sig=2026/`): its value is part of a path, and of the rows' lineage. No plural of
# `token` (`max_tokens=4096` is a setting). Bounded, so a long line costs no more than its length.
_SECRET_PARAMS = re.compile(
    r"(?i)(?P<key>(?<![\w./-])[\w.-]*?(?:token|passwords?|passwd|pwd|secrets?|credentials?|"
    r"(?:api|access|secret|account|private)[_.-]?key|sig|signature|sas)(?:\.[\w-]+){0,8}=)"
    r"[^&\s'\"]+"
)
MASK = "***"


def scrub(text: str) -> str:
    """The text with URI passwords and secret-looking parameters replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _HTTP_TOKEN.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m['key']}{MASK}", text)


def scrub_causes(error: BaseException) -> None:
    """Mask credentials in the exceptions `error` was raised from, which a notebook's traceback
    shows below lakescore's own scrubbed sentence (an MLflow error quoting the tracking URI).

    A link whose text still holds one after its text arguments are scrubbed (a Java error's
    message, a type with its own `__str__`) is cut from the chain, with a note saying so.
    """
    seen: set[int] = set()
    link = error
    while id(link) not in seen:
        seen.add(id(link))
        below = (
            link.__cause__
            if link.__cause__ is not None
            else (None if link.__suppress_context__ else link.__context__)
        )
        if below is None:
            return
        if _holds_credentials(below):
            below.args = tuple(scrub(a) if isinstance(a, str) else a for a in below.args)
            if isinstance(getattr(below, "message", None), str):
                with contextlib.suppress(AttributeError):  # a read-only property
                    below.message = scrub(below.message)  # type: ignore[attr-defined]
        if _holds_credentials(below):
            link.__cause__ = None
            link.__suppress_context__ = True
            if hasattr(link, "add_note"):  # Python 3.11+; on 3.10 the chain is only cut
                link.add_note(
                    f"(raised from a {type(below).__name__} left out here: its text held "
                    "credentials)"
                )
            return
        link = below


def _holds_credentials(error: BaseException) -> bool:
    try:
        text = str(error)
    except Exception:  # a broken __str__ shows nothing either
        return False
    return scrub(text) != text


class ScrubbingFormatter(logging.Formatter):
    """A log formatter that masks credentials in the message and in a logged traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def scrub_every_log_record() -> None:
    """Mask credentials in every log record this process makes, whichever handler prints it:
    MLflow logs through a handler of its own (not propagated to the root logger's), and its
    warnings can quote a tracking URI. For the command line, which owns its process; a notebook's
    logging is left as its user set it up."""
    make = logging.getLogRecordFactory()
    if getattr(make, "scrubs", False):
        return

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # wrong arguments: logging reports it when the record is printed
            return record
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            clean = scrub(trace)
            if clean != trace:
                record.exc_text = clean  # a formatter prints exc_text when it is set
        return record

    scrubbed.scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbed)


def redact_columns(columns: Sequence[str], redact: Sequence[str]) -> list[Column]:
    """Each column as is, except those in `redact`: `sha256:<hex>` of the value; null stays null."""
    hidden = set(redact)
    return [
        (
            F.when(
                F.col(quoted(name)).isNotNull(),
                F.concat(F.lit("sha256:"), F.sha2(F.col(quoted(name)).cast("string"), 256)),
            ).alias(name)
            if name in hidden
            else F.col(quoted(name))
        )
        for name in columns
    ]
