"""Keep secrets out of everything lakescore writes or prints, and mask sensitive quarantine columns.

`scrub` removes credentials from URIs and key=value text (run records, errors, progress lines,
Delta userMetadata). `redact_columns` replaces values with a stable SHA-256, so duplicates stay
findable while the values themselves never land in the quarantine table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakescore.columns import quoted

# user:password@ in any URI; the password up to the authority's last `@` (one written with a
# raw `@` in it). Without a password, the user part is masked for http(s) only, where it is a
# token (`https://TOKEN@host`): in `abfss://container@account` it names the storage.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+:[^/\s]+@")
_HTTP_TOKEN = re.compile(r"(?P<scheme>(?i:https?)://)[^/@\s:]+@")
_SECRET_PARAMS = re.compile(
    r"(?i)(?P<key>\b(?:token|access_token|password|passwd|pwd|secret|client_secret|api_key|"
    r"apikey|access_key|secret_key|sig|signature|sas|credential)s?=)[^&\s'\"]+"
)
MASK = "***"


def scrub(text: str) -> str:
    """The text with URI passwords and secret-looking parameters replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _HTTP_TOKEN.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m['key']}{MASK}", text)


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
