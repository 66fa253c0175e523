"""The Java check gives one clear sentence before Spark would fail deep inside its gateway, and a
failed resolution of Delta's jars gives Ivy's reason, not the Python traceback after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakescore.errors import EnvironmentProblem
from lakescore.session import check_java, quiet_logging_option, resolution_failure


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="run Spark: install a JDK"):
        check_java()


def test_old_java_is_named_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match=r'Java 17 or newer.*"11\.0\.22"'):
        check_java()


def test_this_machines_java_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    check_java()


# The end of a resolution's stderr for a version Maven Central does not have (captured).
IVY_FAILURE = """\
\t\t::::::::::::::::::::::::::::::::::::::::::::::
\t\t::          UNRESOLVED DEPENDENCIES         ::
\t\t:: io.delta#delta-spark_4.2_2.13;0.0.1-nope: not found
:: USE VERBOSE OR DEBUG MESSAGE LEVEL FOR MORE DETAILS
Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: \
io.delta#delta-spark_4.2_2.13;0.0.1-nope: not found]
\tat org.apache.spark.deploy.SparkSubmitUtils$.resolveMavenCoordinates(SparkSubmit.scala:1650)
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/pyspark/java_gateway.py", line 111, in launch_gateway
    raise PySparkRuntimeError(
pyspark.errors.exceptions.base.PySparkRuntimeError: [JAVA_GATEWAY_EXITED] Java gateway process \
exited before sending its port number.
"""


def test_a_failed_resolution_gives_ivys_reason() -> None:
    assert resolution_failure(IVY_FAILURE) == (
        'Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: '
        "io.delta#delta-spark_4.2_2.13;0.0.1-nope: not found]"
    )


def test_without_ivys_reason_the_last_lines_are_given() -> None:
    assert resolution_failure("one\ntwo\nthree\nfour\nfive\n") == "two | three | four | five"


def test_the_logging_option_survives_a_folder_with_a_space(tmp_path: Path) -> None:
    """Spark's launcher splits extraJavaOptions on whitespace: a checkout in `My Projects/`
    gave the JVM a second, bogus argument, and no local session started."""
    config = tmp_path / "My Projects" / "log4j2.properties"
    option = quiet_logging_option(config)
    assert " " not in option
    assert (
        option
        == f"-Dlog4j2.configurationFile=file://{tmp_path.resolve()}/My%20Projects/log4j2.properties"
    )
    assert quiet_logging_option().startswith("-Dlog4j2.configurationFile=file:///")


def test_the_cached_jar_list_keeps_paths_with_spaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home folder with a space in its name: the cached list is one path per line."""
    from lakescore.session import DELTA_PACKAGE, delta_jars

    jars = [tmp_path / "my home" / ".ivy2" / name for name in ("delta-spark.jar", "storage.jar")]
    for jar in jars:
        jar.parent.mkdir(parents=True, exist_ok=True)
        jar.write_bytes(b"")
    listing = tmp_path / (DELTA_PACKAGE.replace(":", "_") + ".jars")
    listing.write_text("".join(f"{jar}\n" for jar in jars))
    monkeypatch.setenv("LAKESCORE_CACHE_DIR", str(tmp_path))

    assert delta_jars() == [str(jar) for jar in jars]


def test_resolved_jar_uris_become_local_paths() -> None:
    """Spark gives `spark.jars` as URIs: a home with a space is `%20` there, not a path."""
    from lakescore.resolve_jars import jar_paths

    setting = "file:/home/my%20home/.ivy2.5.2/jars/delta-spark.jar,file:///opt/x.jar,/plain.jar"
    assert jar_paths(setting) == [
        "/home/my home/.ivy2.5.2/jars/delta-spark.jar",
        "/opt/x.jar",
        "/plain.jar",
    ]


def test_spark_defaults_are_read_as_java_reads_properties() -> None:
    """A proxy option continued on the next line became a bogus key, and the `\\` of the first
    line reached the JVM's options; a `, ` before an extension listed Delta's twice."""
    from lakescore.session import _joined, java_properties

    text = (
        "# a comment ending in a backslash \\\n"
        "spark.driver.extraJavaOptions -Dhttp.proxyHost=proxy \\\n"
        "    -Dhttp.proxyPort=3128\n"
        "spark.jars a.jar,\\\n"
        "           b.jar\n"
        "spark.local.dir=C:\\\\tmp\\\\spark\n"
        "spark.app.name : caf\\u00e9\n"
        "=nameless\n"
        "spark.sql.extensions org.example.Ext, io.delta.sql.DeltaSparkSessionExtension\n"
    )
    settings = java_properties(text)
    assert settings == {
        "spark.driver.extraJavaOptions": "-Dhttp.proxyHost=proxy -Dhttp.proxyPort=3128",
        "spark.jars": "a.jar,b.jar",
        "spark.local.dir": "C:\\tmp\\spark",
        "spark.app.name": "café",
        "spark.sql.extensions": "org.example.Ext, io.delta.sql.DeltaSparkSessionExtension",
    }
    delta = "io.delta.sql.DeltaSparkSessionExtension"
    joined = _joined(settings, "spark.sql.extensions", delta)
    assert joined == f"org.example.Ext,{delta}"
    assert _joined(settings, "spark.jars", "/d.jar") == "a.jar,b.jar,/d.jar"


def test_delta_already_in_spark_defaults_is_not_resolved_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine without Maven Central whose spark-defaults.conf lists Delta's jars (or its
    package): the command resolved them again from Maven Central, and every run failed."""
    from lakescore import session

    def offline() -> list[str]:
        raise AssertionError("resolved Delta's jars from Maven Central")

    monkeypatch.setattr(session, "delta_jars", offline)
    jars = "/opt/jars/delta-spark_2.13-4.4.0.jar,/opt/jars/delta-storage-4.4.0.jar"
    assert session.local_jars({"spark.jars": jars}) == jars
    packages = {"spark.jars.packages": "io.delta:delta-spark_4.2_2.13:4.4.0"}
    assert session.local_jars(packages) == ""
    monkeypatch.setattr(session, "delta_jars", lambda: ["/cache/delta-spark_4.2_2.13-4.4.0.jar"])
    assert session.local_jars({"spark.jars": "/opt/hadoop-aws.jar"}) == (
        "/opt/hadoop-aws.jar,/cache/delta-spark_4.2_2.13-4.4.0.jar"
    )
