"""A Spark Connect session (Databricks serverless, shared access mode, SPARK_REMOTE) cannot run
lakescore: it has no SparkContext. lakescore says so in one sentence before it talks to the
session, instead of failing deep inside or waiting on gRPC retries for a server that is gone.

The sessions here are real Connect clients pointed at a port where no server listens. Each test
runs in its own process, because a Connect session switches the whole process to Connect mode
(PySpark's `SPARK_CONNECT_MODE_ENABLED`), which the other tests' classic session must not see.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REFUSAL = "lakescore needs a classic Spark session with a SparkContext, not a Spark Connect session"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def deployment_file(folder: Path) -> Path:
    """A valid deployment whose tables nothing may create: lakescore must stop before them."""
    file = folder / "deployment.yaml"
    file.write_text(
        textwrap.dedent(
            """\
            name: connect-check
            model: {uri: models:/meter_risk/1, tracking_uri: sqlite:///mlflow.db}
            input: {format: parquet, path: raw}
            output: {path: scored/predictions}
            quarantine: {path: scored/quarantine}
            runs: {path: scored/runs}
            """
        )
    )
    (folder / "raw").mkdir()
    return file


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A hang guard only: without the check, the builder retries gRPC for minutes.
    return subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.e2e
def test_a_notebooks_connect_session_is_refused_by_score_and_get_spark(tmp_path: Path) -> None:
    file = deployment_file(tmp_path)
    script = textwrap.dedent(
        f"""\
        import json
        import os
        from pyspark.sql import SparkSession
        from lakescore.config import load_deployment
        from lakescore.errors import EnvironmentProblem
        from lakescore.runner import score
        from lakescore.session import get_spark

        spark = SparkSession.builder.remote("sc://127.0.0.1:{unused_port()}").getOrCreate()
        refused = {{"session": type(spark).__module__}}
        for name, call in [
            ("score", lambda: score(spark, load_deployment({str(file)!r}))),
            ("get_spark", get_spark),
        ]:
            try:
                call()
                refused[name] = None
            except EnvironmentProblem as exc:
                refused[name] = str(exc)
        print(json.dumps(refused), flush=True)
        # Not a normal exit: PySpark's exit hook would release the session over gRPC, retrying
        # for minutes against the port where no server listens.
        os._exit(0)
        """
    )
    done = run([sys.executable, "-c", script], tmp_path)
    assert done.returncode == 0, done.stderr
    refused = json.loads(done.stdout.strip().splitlines()[-1])
    assert refused["session"] == "pyspark.sql.connect.session"  # a real Connect client
    for name in ("score", "get_spark"):
        assert refused[name] is not None and refused[name].startswith(REFUSAL), refused
        assert "single-user access mode" in refused[name]
    assert not (tmp_path / "scored").exists()  # no run record, no table, no staging


@pytest.mark.e2e
def test_the_command_line_refuses_spark_remote_in_one_sentence_without_showing_it(
    tmp_path: Path,
) -> None:
    """The URL is named, not printed: a Databricks Connect URL carries a token."""
    file = deployment_file(tmp_path)
    remote = f"sc://127.0.0.1:{unused_port()}/;token=dapi-secret"
    done = run([str(BIN / "lakescore"), "score", str(file)], tmp_path, SPARK_REMOTE=remote)
    assert done.returncode == 1, done.stderr
    message = done.stderr.strip()
    assert message.startswith(f"lakescore: error: {REFUSAL} (SPARK_REMOTE in the environment)")
    assert "dapi-secret" not in message and "Traceback" not in done.stderr
    assert not (tmp_path / "scored").exists()


@pytest.mark.e2e
def test_the_commands_own_session_is_classic_whatever_the_api_mode_default(
    tmp_path: Path,
) -> None:
    """SPARK_API_MODE=connect or SPARK_CONNECT_MODE=1 make PySpark's builder start a local
    Connect server and hand back a client; the session lakescore builds for itself stays
    classic, so the command works."""
    file = deployment_file(tmp_path)
    done = run(
        [str(BIN / "lakescore"), "runs", "list", str(file), "--json"],
        tmp_path,
        SPARK_API_MODE="connect",
        SPARK_CONNECT_MODE="1",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # no run yet: read through a classic session
