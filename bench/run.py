"""lakescore's benchmark: throughput and peak memory against reference scorers on the same data.

    .venv/bin/python bench/run.py                       # 2M rows, 3 repetitions, all four scorers
    .venv/bin/python bench/run.py --rows 8000000 --repeat 5
    .venv/bin/python bench/run.py --rows 200000 --repeat 1 --scorers lakescore,limit

Generates the input once per size and the model once per work folder (both cached in --workdir),
then runs each scorer in its own subprocess (a fresh JVM each time), repetitions interleaved.
Prints medians per scorer and the ratios of lakescore to each reference, and writes everything to
bench/results/<UTC timestamp>-<rows>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import datagen, model
from bench.procmem import TreePoller

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_SCORERS = ("lakescore", "spark_udf", "predict_batch_udf", "limit")
ALL_SCORERS = (*DEFAULT_SCORERS, "lakescore_cli")
REFERENCES = ("spark_udf", "predict_batch_udf", "limit")

DEPLOYMENT_YAML = """\
# Written by bench/run.py: lakescore's side of the benchmark, everything on.
name: bench-meter-fault
model:
  uri: {model_uri}
  tracking_uri: {tracking_uri}
input:
  format: parquet
  path: {input_path}
  key: {key}
output:     {{path: {out}/predictions}}
quarantine: {{path: {out}/quarantine}}
runs:       {{path: {out}/runs}}
rules:
  - {{name: usage_non_negative, expr: "{rule}", action: quarantine}}
limits:
  max_error_fraction: 0.05
scoring:
  batch_size: {batch_size}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="lakescore throughput and memory benchmark."
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=2_000_000,
        help="input rows: the benchmark sizes are 1000000, 2000000 (default) and 8000000",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument(
        "--scorers",
        default=",".join(DEFAULT_SCORERS),
        help=f"comma-separated, from {', '.join(ALL_SCORERS)} (default: the first four)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=BENCH_DIR / "data",
        help="cache for inputs, registry and outputs (default bench/data, not committed)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    parser.add_argument("--batch-size", type=int, default=10_000, help="rows per model call")
    parser.add_argument(
        "--rows-per-file", type=int, default=datagen.ROWS_PER_FILE, help="rows per Parquet file"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a scorer is killed"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; write no JSON")
    parser.add_argument(
        "--show", type=Path, metavar="RESULT.json", help="print a saved result and exit"
    )
    args = parser.parse_args(argv)
    args.scorer_list = [s.strip() for s in args.scorers.split(",") if s.strip()]
    unknown = [s for s in args.scorer_list if s not in ALL_SCORERS]
    if unknown or not args.scorer_list:
        parser.error(
            f"unknown scorer(s) {', '.join(unknown)}; choose from {', '.join(ALL_SCORERS)}"
        )
    if args.rows < 1000 or args.repeat < 1:
        parser.error("--rows must be at least 1000 and --repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print(render(json.loads(args.show.read_text())))
        return 0
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    # Before any scorer runs: the code the scorers import is the code at the start.
    versions_at_start = versions()

    say(f"input: {args.rows:,} rows")
    step = time.perf_counter()
    inputs = workdir / "inputs" / f"rows-{args.rows}"
    dataset = datagen.ensure_dataset(inputs, args.rows, args.rows_per_file)
    say(
        f"  {'cached' if dataset['cached'] else 'generated'}: {len(dataset['files'])} Parquet "
        f"file(s), {dataset['bytes'] / 2**20:,.0f} MiB, {dataset['bad_rows']:,} bad rows "
        f"({time.perf_counter() - step:.1f} s)"
    )
    step = time.perf_counter()
    registered = model.ensure_model(workdir)
    say(
        f"model: {registered['uri']} ({registered['estimator']}), "
        f"{'cached' if registered['cached'] else 'trained and registered'} "
        f"({time.perf_counter() - step:.1f} s)"
    )
    config_path = write_config(workdir, inputs, dataset, registered, args)

    step = time.perf_counter()
    warm_up(dataset, inputs)
    say(f"warm-up: Delta's jars resolved, input read once ({time.perf_counter() - step:.1f} s)")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.scorer_list}
    for repetition in range(1, args.repeat + 1):
        # Each repetition starts with the next scorer: no one always runs first (its page cache
        # and disk state after the data was written would be its alone).
        shift = (repetition - 1) % len(args.scorer_list)
        for scorer in args.scorer_list[shift:] + args.scorer_list[:shift]:
            say(f"[{repetition}/{args.repeat}] {scorer} ...")
            run = check_rows(
                run_scorer(scorer, repetition, workdir, config_path, args.timeout), args.rows
            )
            runs[scorer].append(run)
            say(f"    {describe_run(run)}")

    summary = {name: summarize(name, attempts, args.rows) for name, attempts in runs.items()}
    ratios = compute_ratios(summary)
    report = {
        "benchmark": "lakescore bench/run.py",
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "rows": args.rows,
        "repeat": args.repeat,
        "batch_size": args.batch_size,
        "machine": machine(load_before),
        "versions": versions_at_start,
        # The checkout changed while the scorers ran: the numbers belong to no one commit.
        "versions_changed_during_run": versions() != versions_at_start,
        "input": {k: v for k, v in dataset.items() if k != "cached"},
        "model": {k: v for k, v in registered.items() if k != "cached"},
        "deployment": (workdir / f"deployment-{args.rows}.yaml").read_text(),
        "scorers": summary,
        "ratios": ratios,
        "runs": runs,
    }
    print()
    print(render(report))
    if not args.no_save:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
        target = args.results_dir / f"{stamp}-{args.rows}.json"
        target.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {display_path(target)}")
    failed = [name for name, s in summary.items() if s["failures"]]
    return 1 if failed else 0


def warm_up(dataset: dict[str, Any], inputs: Path) -> None:
    """Untimed, before any scorer: resolve Delta's jars (a fresh clone's first session fetches
    them from Maven inside whichever scorer ran first), write freshly generated files back to
    disk, and read every input file once, so each scorer finds them in the page cache."""
    from lakescore.session import delta_jars

    delta_jars()
    os.sync()
    for name in dataset["files"]:
        with (inputs / name).open("rb") as f:
            while f.read(1 << 24):
                pass


def write_config(
    workdir: Path,
    inputs: Path,
    dataset: dict[str, Any],
    registered: dict[str, Any],
    args: argparse.Namespace,
) -> Path:
    """The deployment file for lakescore and the JSON every scorer reads."""
    scratch = workdir / "scratch"
    deployment = workdir / f"deployment-{args.rows}.yaml"
    deployment.write_text(
        DEPLOYMENT_YAML.format(
            model_uri=registered["uri"],
            tracking_uri=registered["tracking_uri"],
            input_path=inputs,
            key=datagen.KEY,
            out=scratch / "lakescore",  # the lakescore_cli scorer writes here too
            rule=datagen.USAGE_RULE,
            batch_size=args.batch_size,
        )
    )
    config = {
        "rows": args.rows,
        "input_path": str(inputs),
        "files": [str(inputs / name) for name in dataset["files"]],
        "key": datagen.KEY,
        "features": list(datagen.FEATURES),
        "model_uri": registered["uri"],
        "tracking_uri": registered["tracking_uri"],
        "deployment": str(deployment),
        "batch_size": args.batch_size,
        "scratch": str(scratch),
    }
    path = workdir / f"config-{args.rows}.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def run_scorer(
    scorer: str, repetition: int, workdir: Path, config_path: Path, timeout: float
) -> dict[str, Any]:
    """One scorer in a fresh subprocess; its own timings plus wall time and tree peak RSS."""
    scratch = workdir / "scratch"
    # Every run starts from empty output tables, so repetitions do the same work. Other scorers'
    # outputs stay, for comparing predictions afterwards.
    own = scratch / ("lakescore" if scorer.startswith("lakescore") else scorer)
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir(parents=True)
    cwd = workdir / "cwd"  # spark-warehouse and the like land here
    cwd.mkdir(exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    result_path = own / "result.json"
    log_path = logs / f"{scorer}-{repetition}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PYSPARK_PYTHON"] = sys.executable
    env.pop("PYSPARK_GATEWAY_PORT", None)
    command = [
        sys.executable,
        "-m",
        "bench.scorers",
        scorer,
        "--config",
        str(config_path),
        "--result",
        str(result_path),
        "--run-id",
        f"bench-{repetition}",
    ]
    with log_path.open("w") as log:
        started = time.perf_counter()
        child = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout stops all of it
        )
        poller = TreePoller(child.pid).start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            code = child.wait()
        except BaseException:  # Ctrl-C: its own session does not get the terminal's signal
            _kill_group(child)
            child.wait()
            raise
        wall = time.perf_counter() - started
        memory = poller.stop()
    run: dict[str, Any] = {
        "repetition": repetition,
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(memory.peak_kib / 1024, 1),
        "peak_pss_mib": round(memory.peak_pss_kib / 1024, 1),
        "peak_processes": memory.peak_processes,
        "max_processes": memory.max_processes,
        "memory_samples": memory.samples,
        "cpu_s": memory.cpu_by_kind(),
        "peak_breakdown": [
            {"pid": pid, "command": cmd, "rss_mib": round(kib / 1024, 1)}
            for pid, cmd, kib in memory.peak_breakdown
        ],
        "log": display_path(log_path),
    }
    if code == 0 and result_path.is_file():
        child_result = json.loads(result_path.read_text())
        run.update(child_result)
        run["output_files"] = output_files(own)
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-12:]
        run["error"] = "\n".join(tail) or f"exit code {code}"
    return run


def check_rows(run: dict[str, Any], rows: int) -> dict[str, Any]:
    """A run that did not account for every input row (scored, or quarantined) failed: its
    speed would be that of less work."""
    if "error" in run:
        return run
    done = (run.get("rows_scored") or 0) + (run.get("rows_quarantined") or 0)
    read = run.get("rows_read")
    if done != rows or read != rows:
        run["error"] = f"read {read} rows and scored or quarantined {done}, of {rows}"
    return run


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """The scorer and its JVM (its process group); Spark's Python workers, in a group of their
    own, end when the JVM does."""
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(child.pid, signal.SIGKILL)


def output_files(folder: Path) -> dict[str, dict[str, float]]:
    """Data files of each Delta table under `folder` (emptied before the run, so one run's): how
    many, and their size. Many small files slow every later reader; one huge file, the writers."""
    tables: dict[str, dict[str, float]] = {}
    for log in sorted(folder.rglob("_delta_log")):
        table = log.parent
        sizes = [
            f.stat().st_size
            for f in table.rglob("*.parquet")
            if "_delta_log" not in f.relative_to(table).parts
        ]
        tables[str(table.relative_to(folder))] = {
            "files": len(sizes),
            "mib": round(sum(sizes) / 2**20, 2),
            "largest_mib": round(max(sizes, default=0) / 2**20, 2),
        }
    return tables


def summarize(name: str, attempts: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """Medians over the successful repetitions."""
    good = [a for a in attempts if "error" not in a]

    def median(key: str) -> float | None:
        values = [a[key] for a in good if isinstance(a.get(key), (int, float))]
        return round(statistics.median(values), 3) if values else None

    wall, job, startup = median("wall_s"), median("job_s"), median("startup_s")
    summary: dict[str, Any] = {
        "scorer": name,
        "repetitions": len(attempts),
        "failures": len(attempts) - len(good),
        "wall_s": wall,
        "job_s": job,
        "startup_s": startup,
        "job_s_range": _range(good, "job_s"),
        "wall_s_range": _range(good, "wall_s"),
        "rows_per_s_job": round(rows / job) if job else None,
        "rows_per_s_wall": round(rows / wall) if wall else None,
        "peak_rss_mib": median("peak_rss_mib"),
        "peak_pss_mib": median("peak_pss_mib"),
        "rows_read": good[0].get("rows_read") if good else None,
        "rows_scored": good[0].get("rows_scored") if good else None,
        "rows_quarantined": good[0].get("rows_quarantined") if good else None,
    }
    summary["cpu_s"] = _median_of_fields([a.get("cpu_s") or {} for a in good])
    summary["jvm"] = _median_of_fields(
        [a["jvm"] for a in good if isinstance(a.get("jvm"), dict) and "error" not in a["jvm"]]
    )
    passes = [a["spark_io"]["input_passes"] for a in good if a.get("spark_io", {}).get("stages")]
    if passes:
        summary["input_passes"] = statistics.median(passes)
    return summary


def _median_of_fields(values: list[dict[str, float]]) -> dict[str, float]:
    """Field by field, the median over the repetitions that have the field."""
    keys = sorted({k for v in values for k in v})
    return {k: round(statistics.median(v[k] for v in values if k in v), 1) for k in keys}


def _range(attempts: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [a[key] for a in attempts if isinstance(a.get(key), (int, float))]
    return [round(min(values), 3), round(max(values), 3)] if values else None


def compute_ratios(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """lakescore / each reference: throughput with and without start-up, and peak memory.

    A throughput ratio below 1 means lakescore scores fewer rows per second than the reference.
    """
    ours = summary.get("lakescore")
    ratios: dict[str, dict[str, float | None]] = {}
    if not ours:
        return ratios
    for reference in REFERENCES:
        theirs = summary.get(reference)
        if not theirs:
            continue
        ratios[f"lakescore/{reference}"] = {
            "rows_per_s_job": _ratio(ours["rows_per_s_job"], theirs["rows_per_s_job"]),
            "rows_per_s_wall": _ratio(ours["rows_per_s_wall"], theirs["rows_per_s_wall"]),
            "peak_rss": _ratio(ours["peak_rss_mib"], theirs["peak_rss_mib"]),
            "peak_pss": _ratio(ours.get("peak_pss_mib"), theirs.get("peak_pss_mib")),
        }
    return ratios


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def render(report: dict[str, Any]) -> str:
    machine_info = report["machine"]
    lines = [
        f"lakescore benchmark: {report['rows']:,} rows, median of {report['repeat']} "
        f"repetition(s), {machine_info['cpu_count']} cores, "
        f"load average {machine_info['load_average_before'][0]:.1f} before the runs",
        "",
    ]
    header = (
        f"{'scorer':<18} {'wall s':>8} {'job s':>8} {'job s min-max':>14} {'start s':>8} "
        f"{'rows/s job':>11} {'rows/s wall':>12} {'peak RSS MiB':>13} {'peak PSS MiB':>13} "
        f"{'scored':>11} "
        f"{'quarantined':>12}"
    )
    lines += [header, "-" * len(header)]
    for s in report["scorers"].values():
        spread = _range(
            [a for a in report["runs"].get(s["scorer"], []) if "error" not in a], "job_s"
        )
        shown = f"{spread[0]:.1f}-{spread[1]:.1f}" if spread else "-"
        lines.append(
            f"{s['scorer']:<18} {_num(s['wall_s'], 1):>8} {_num(s['job_s'], 1):>8} {shown:>14} "
            f"{_num(s['startup_s'], 1):>8} {_num(s['rows_per_s_job'], 0):>11} "
            f"{_num(s['rows_per_s_wall'], 0):>12} {_num(s['peak_rss_mib'], 0):>13} "
            f"{_num(s.get('peak_pss_mib'), 0):>13} "
            f"{_num(s['rows_scored'], 0):>11} {_num(s['rows_quarantined'], 0):>12}"
            + (f"   ({s['failures']} failed)" if s["failures"] else "")
        )
    lines += [
        "",
        "wall s: the whole subprocess (Python, imports, Spark start-up, job, shutdown); "
        "job s: from the SparkSession",
        "existing to the last commit; rows/s: input rows / time; peak RSS and PSS: summed over "
        "the process tree",
        "(JVM + Python); PSS divides shared pages among their processes (the limit's forked "
        "workers share the model).",
    ]
    if report["ratios"]:
        lines += ["", "lakescore / reference (throughput below 1.0 = lakescore is slower):"]
        for name, r in report["ratios"].items():
            lines.append(
                f"  {name:<30} rows/s excl. start-up {_num(r['rows_per_s_job'], 2)}x, "
                f"incl. start-up {_num(r['rows_per_s_wall'], 2)}x, "
                f"peak memory {_num(r['peak_rss'], 2)}x RSS, {_num(r.get('peak_pss'), 2)}x PSS"
            )
    passes = {n: s["input_passes"] for n, s in report["scorers"].items() if "input_passes" in s}
    if passes:
        shown = ", ".join(f"{n} {p:g}" for n, p in passes.items())
        lines += ["", f"records read by Spark tasks / input rows: {shown}"]
    lines += _cpu_lines(report["scorers"])
    files = _output_file_lines(report["runs"])
    if files:
        lines += ["", "data files written per Delta table (first successful repetition):"]
        lines += [f"  {line}" for line in files]
    memory = _memory_breakdown(report["runs"])
    if memory:
        lines += ["", "process tree at peak memory (first successful repetition), RSS MiB:"]
        lines += [f"  {line}" for line in memory]
    breakdown = _lakescore_breakdown(report["runs"].get("lakescore", []))
    if breakdown:
        lines += ["", "lakescore stages (first successful repetition, seconds into the job):"]
        lines += [f"  {line}" for line in breakdown]
    for name, attempts in report["runs"].items():
        for attempt in attempts:
            if "error" in attempt:
                lines += ["", f"{name} repetition {attempt['repetition']} failed:"]
                lines += [f"  {line}" for line in attempt["error"].splitlines()]
    return "\n".join(lines)


def _cpu_lines(scorers: dict[str, dict[str, Any]]) -> list[str]:
    """Where the cores went: CPU seconds by process kind, and the JVM's JIT and class loading."""
    rows = [(name, s.get("cpu_s") or {}, s.get("jvm") or {}) for name, s in scorers.items()]
    if not any(cpu for _, cpu, _ in rows):
        return []
    header = (
        f"{'scorer':<18} {'driver':>8} {'JVM':>8} {'workers':>8} {'total':>8} "
        f"{'JIT s':>7} {'classes':>8} {'GC s':>6}"
    )
    lines = ["", "CPU seconds (median), by process:", header, "-" * len(header)]
    for name, cpu, jvm in rows:
        lines.append(
            f"{name:<18} {_num(cpu.get('driver'), 1):>8} {_num(cpu.get('jvm'), 1):>8} "
            f"{_num(cpu.get('python_workers'), 1):>8} {_num(sum(cpu.values()), 1):>8} "
            f"{_num(jvm.get('jit_compile_s'), 1):>7} {_num(jvm.get('classes_loaded'), 0):>8} "
            f"{_num(jvm.get('gc_s'), 1):>6}"
        )
    lines.append(
        "workers: Spark's Python daemon and workers (or the pool); JIT s: time the JVM's "
        "compiler threads worked."
    )
    return lines


def _output_file_lines(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = []
    for name, attempts in runs.items():
        attempt = next((a for a in attempts if a.get("output_files")), None)
        for table, f in (attempt or {}).get("output_files", {}).items():
            lines.append(
                f"{name + ' ' + table:<34} {f['files']:>4.0f} file(s), {f['mib']:>8,.1f} MiB, "
                f"largest {f['largest_mib']:,.1f} MiB"
            )
    return lines


def _memory_breakdown(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = []
    for name, attempts in runs.items():
        attempt = next((a for a in attempts if "error" not in a and a["peak_breakdown"]), None)
        if attempt is None:
            continue
        groups: dict[str, list[float]] = {}
        for process in attempt["peak_breakdown"]:
            command = process["command"]
            kind = (
                "JVM"
                if command.startswith("java")
                else "Spark Python workers"
                if "pyspark.daemon" in command
                else "drivers/other"
            )
            groups.setdefault(kind, []).append(process["rss_mib"])
        shown = ", ".join(
            f"{kind} {sum(sizes):,.0f} ({len(sizes)} process{'es' if len(sizes) > 1 else ''})"
            for kind, sizes in groups.items()
        )
        lines.append(f"{name:<18} {shown}")
    return lines


def _lakescore_breakdown(attempts: list[dict[str, Any]]) -> list[str]:
    for attempt in attempts:
        marks = attempt.get("stage_marks")
        if not marks:
            continue
        out, previous = [], 0.0
        for mark in marks:
            out.append(f"{mark['at_s']:7.1f} (+{mark['at_s'] - previous:5.1f})  {mark['message']}")
            previous = mark["at_s"]
        out.append(f"{attempt['job_s']:7.1f} (+{attempt['job_s'] - previous:5.1f})  job done")
        return out
    return []


def _num(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def describe_run(run: dict[str, Any]) -> str:
    if "error" in run:
        last = run["error"].splitlines()[-1] if run["error"] else ""
        return f"FAILED (exit {run['exit_code']}): {last[:200]}; log {run['log']}"
    job = run.get("job_s")
    return (
        f"wall {run['wall_s']:.1f} s, job {job:.1f} s, " if job is not None else ""
    ) + f"peak RSS {run['peak_rss_mib']:,.0f} MiB, rows scored {run.get('rows_scored')}"


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(total_kib / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "java": _java_version(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "spark_master": os.environ.get("LAKESCORE_SPARK_MASTER", "local[*]"),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "lakescore",
        "pyspark",
        "delta-spark",
        "mlflow",
        "scikit-learn",
        "pandas",
        "pyarrow",
        "numpy",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found["lakescore_commit"] = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "src")
    # Numbers taken with uncommitted changes in src/ belong to no commit: say so.
    found["lakescore_src_uncommitted_changes"] = str(bool(dirty)).lower()
    return found


def _java_version() -> str:
    try:
        shown = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return shown.splitlines()[0] if shown else "unknown"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    """The output of a git command in the repository, or "" when git is missing or fails."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
