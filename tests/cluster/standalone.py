"""A real Spark standalone cluster on loopback (one master, two one-core workers) started from the
installed pyspark, and lakescore built as a wheel and shipped the way the README says (a .zip of
it with --py-files) to a driver and executors whose Python has every dependency but lakescore.

Every daemon runs in its own process group; teardown kills the groups (and any descendant that
left them), also when a test fails. Should the test process itself die, the kernel kills the
daemons (PR_SET_PDEATHSIG), and their executors follow their worker. Nothing binds to anything
but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
WORKERS = 2
# Executors get a tracking URI where nothing listens: a run that succeeds proves they never
# needed the MLflow server (the driver resolves the model via the deployment's sqlite URI).
UNREACHABLE_TRACKING_URI = "http://127.0.0.1:9"
START_TIMEOUT = 180.0


def free_port() -> int:
    """A port nothing listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def die_with_parent() -> None:
    """Run in the child before exec: the kernel SIGKILLs it when the test process dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def spark_env(python: Path | None = None) -> dict[str, str]:
    """The environment for every Spark process: loopback only, the venv's pyspark, and `python`
    (else the venv's) for the driver and the executors."""
    import pyspark

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "PYSPARK_GATEWAY")) and k != "PYTHONPATH"
    }
    env.update(
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        PYSPARK_PYTHON=str(python or sys.executable),
        PYSPARK_DRIVER_PYTHON=str(python or sys.executable),
        # The master's REST submission server would bind port 6066; nothing here needs it.
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
    )
    return env


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def environment(pid: int) -> dict[str, str]:
    """A process's environment as it started."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def snapshot(root: int) -> dict[int, str]:
    """The process tree under `root`, each pid with its command line."""
    return {pid: command_line(pid) for pid in process_tree(root)}


def signal_tree(group: int, tree: dict[int, str], sig: signal.Signals) -> None:
    """Signal a process group we created and every recorded descendant still running.

    PySpark's daemon moves itself into its own group, so the group alone is not enough. A pid is
    signalled only while it still runs the recorded command (never a reused pid).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
    for pid, command in tree.items():
        if command and command_line(pid) == command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def kill_tree(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a process started with start_new_session=True, its group and its descendants."""
    if process.poll() is not None and not process_tree(process.pid)[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, if any
        return
    tree = snapshot(process.pid)
    signal_tree(process.pid, tree, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    signal_tree(process.pid, tree, signal.SIGKILL)
    process.wait(timeout=30)


def tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Daemon:
    """One master or worker JVM, started through spark-class with a web UI on `web_port`."""

    name: str
    main_class: str
    args: list[str]
    log: Path
    web_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.web_port = free_port()
        command = [str(BIN / "spark-class"), self.main_class, "--host", LOOPBACK]
        command += ["--webui-port", str(self.web_port), *self.args]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            kill_tree(self.process)
            self.process = None


@dataclass
class StandaloneCluster:
    """A master and WORKERS workers of one core and 2 GiB each, on 127.0.0.1."""

    root: Path
    master_port: int = field(default_factory=free_port)
    master: Daemon | None = None
    workers: list[Daemon] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://{LOOPBACK}:{self.master_port}"

    def start(self) -> None:
        env = spark_env()
        self.master = Daemon(
            "master",
            "org.apache.spark.deploy.master.Master",
            ["--port", str(self.master_port)],
            self.root / "master.log",
        )
        self.master.start(env)
        self._wait(lambda state: state.get("status") == "ALIVE", "the master to come up")
        for index in range(WORKERS):
            work_dir = self.work_dir(index)
            work_dir.mkdir(parents=True, exist_ok=True)
            worker = Daemon(
                f"worker-{index}",
                "org.apache.spark.deploy.worker.Worker",
                ["--cores", "1", "--memory", "2g", "--work-dir", str(work_dir), self.url],
                self.root / f"worker-{index}.log",
            )
            worker.start(env)
            self.workers.append(worker)
        self.wait_for_workers()

    def state(self) -> dict[str, Any]:
        """The master's JSON status page (loopback)."""
        assert self.master is not None
        url = f"http://{LOOPBACK}:{self.master.web_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as page:
            return dict(json.load(page))

    def registered(self, state: dict[str, Any]) -> list[str]:
        """Names of our live worker processes that the master lists as ALIVE."""
        alive_uis = {
            w.get("webuiaddress", "") for w in state.get("workers", []) if w.get("state") == "ALIVE"
        }
        return [
            w.name
            for w in self.workers
            if w.alive and f"http://{LOOPBACK}:{w.web_port}" in alive_uis
        ]

    def wait_for_workers(self) -> None:
        self._wait(
            lambda state: len(self.registered(state)) == WORKERS, f"{WORKERS} workers to register"
        )

    def restore(self) -> None:
        """Restart any worker a test killed, so every test starts with two live workers."""
        env = spark_env()
        for worker in self.workers:
            if not worker.alive:
                worker.stop()
                worker.start(env)
        self.wait_for_workers()

    def worker_processes(self, index: int) -> list[int]:
        """The worker JVM and everything under it: executor JVMs and their Python workers."""
        worker = self.workers[index].process
        assert worker is not None
        return process_tree(worker.pid)

    def app_dirs(self) -> set[Path]:
        """Every application folder on every worker (one per application and worker)."""
        return {app for i in range(len(self.workers)) for app in self.work_dir(i).glob("app-*")}

    def work_dir(self, index: int) -> Path:
        return self.root / f"worker-{index}"

    def executor_log(self, index: int, apps: set[Path]) -> str:
        """What the executors of `apps` on worker `index` logged (their stderr, at INFO)."""
        logs = [
            log
            for app in sorted(apps)
            if app.parent == self.work_dir(index)
            for log in sorted(app.glob("*/stderr"))
        ]
        return "".join(log.read_text(errors="replace") for log in logs)

    def kill_worker(self, index: int) -> list[int]:
        """SIGKILL a worker and its executors at once, as a machine that dies would."""
        worker = self.workers[index].process
        assert worker is not None
        victims = snapshot(worker.pid)
        signal_tree(worker.pid, victims, signal.SIGKILL)
        worker.wait(timeout=30)
        return list(victims)

    def stop(self) -> None:
        for daemon in [*self.workers, *([self.master] if self.master else [])]:
            daemon.stop()

    def logs(self) -> str:
        daemons = [*([self.master] if self.master else []), *self.workers]
        return "\n".join(f"--- {d.name} ---\n{tail(d.log)}" for d in daemons)

    def _wait(self, ready: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.master is None or not self.master.alive:
                raise RuntimeError(f"The master exited:\n{self.logs()}")
            with contextlib.suppress(OSError, ValueError):
                if ready(self.state()):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"Timed out waiting for {what}:\n{self.logs()}")


@dataclass(frozen=True)
class Submission:
    """One spark-submit of jobs/score.py to the cluster, logging to files."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    stdout: Path
    stderr: Path

    def start(self) -> subprocess.Popen[bytes]:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            return subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def run(self, timeout: float = 900.0) -> int:
        process = self.start()
        try:
            return process.wait(timeout=timeout)
        finally:
            kill_tree(process, grace=5.0)

    def err_text(self) -> str:
        return self.stderr.read_text(errors="replace")

    def progress(self) -> str:
        """lakescore's stage lines. spark-submit's PythonRunner merges the Python process's
        stderr into its stdout, so under spark-submit they arrive on stdout."""
        text = self.stdout.read_text(errors="replace") if self.stdout.is_file() else ""
        return text + self.err_text()


def submission(
    cluster: StandaloneCluster,
    package: ShippedPackage,
    deployment: Path,
    run_id: str,
    extra_conf: dict[str, str] | None = None,
) -> Submission:
    """The documented cluster command, plus test-only settings that keep it on loopback, run by
    a Python that has every dependency but not lakescore, as on a cluster's machines."""
    conf = {
        "spark.executorEnv.MLFLOW_TRACKING_URI": UNREACHABLE_TRACKING_URI,
        "spark.executor.cores": "1",
        "spark.cores.max": str(WORKERS),
        # Test-only: no driver UI port to bind, and the driver on loopback by address.
        "spark.ui.enabled": "false",
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        # Test-only sizing for tables of a few thousand rows on two one-core executors: Delta's
        # default of 50 snapshot partitions and Spark's 200 shuffle partitions mean hundreds of
        # tiny tasks per commit.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.shuffle.partitions": "8",
        **(extra_conf or {}),
    }
    command = [
        str(BIN / "spark-submit"),
        "--master",
        cluster.url,
        "--properties-file",
        str(ROOT / "spark_conf" / "cluster.conf"),
        "--load-spark-defaults",
        "--py-files",
        str(package.py_file),
    ]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(ROOT / "jobs" / "score.py"), str(deployment), "--run-id", run_id]
    cwd = deployment.parent
    return Submission(
        command,
        spark_env(package.python),
        cwd,
        cwd / f"submit-{run_id}.out",
        cwd / f"submit-{run_id}.err",
    )


@dataclass(frozen=True)
class ShippedPackage:
    """lakescore as the README ships it (the wheel, copied to a .zip for `--py-files`), and a
    Python that can import it only from there."""

    py_file: Path
    python: Path


def ship_package(work: Path) -> ShippedPackage:
    """Build the wheel, copy it to the .zip `--py-files` takes (Spark puts .zip, .egg and .py
    files on the executors' `sys.path`, not .whl ones), and make the Python to run it with."""
    wheel = build_wheel(work)
    py_file = wheel.with_name(wheel.name.split("-py3-")[0] + ".zip")
    shutil.copyfile(wheel, py_file)
    return ShippedPackage(py_file, python_without_lakescore(work / "python"))


def python_without_lakescore(folder: Path) -> Path:
    """A Python with every package of this venv except lakescore, like a cluster machine's.

    It is a venv whose site-packages names this venv's by path: Python reads the .pth files
    (lakescore's editable install among them) of a site folder only, so lakescore is not
    importable, and a job it runs proves that the shipped package reached the driver and
    every executor.
    """
    done = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    dependencies = _imports(python, "import pyspark, mlflow, sklearn, deltalake")
    assert dependencies.returncode == 0, dependencies.stderr
    assert _imports(python, "import lakescore").returncode != 0, "lakescore is importable"
    return python


def _imports(python: Path, statement: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(python), "-c", statement],
        capture_output=True,
        text=True,
        env=env,
        cwd=python.parent,
        timeout=120,
        check=False,
    )


def build_wheel(work: Path) -> Path:
    """lakescore built as a wheel from a snapshot of the sources, as a release would ship it.

    The snapshot keeps the build out of the repository (no build/ folder) and away from files
    another process may be editing.
    """
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "spark-warehouse"),
    )
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = list(out.glob("lakescore-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        assert "lakescore/runner.py" in wheel.namelist()
    return wheels[0]
