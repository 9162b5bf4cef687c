"""Ten years of three athletes' history imported end to end, then one new file on top of it.

    python benchmarks/ten_years.py [--small] [--workers N] [--baseline-files 20]

1. Export: `pipelines.sample_export` writes 3 athletes × 522 weeks from 2015-01-05 at 1 Hz: about
   3,100 activities and 10 M samples (97 % FIT, 3 % GPX) and ~1,000 weight-scale FIT files.  It is
   deterministic and cached in `benchmarks/.cache/` under a key of its parameters, so only the first
   run pays for it (~10 min; delete the cache after changing the generator).  One mid-history FIT
   run is held back for step 3.
2. Bulk import: `pipelines.runs.import_paths` on the export, in a child process with a fresh
   RETROSTRIDE_HOME and DAGSTER_HOME.  Wall time; records/s; peak RSS of the child's whole process
   tree (the decoder workers included), sampled every 50 ms; its CPU time (on a shared machine the
   wall time follows the load, CPU time much less); and the time of every Dagster step,
   from the runs' step stats, so stages added later (segments, energy, marts) show up by themselves.
3. Incremental: the held-back file imported into that warehouse, the same way.
4. Baseline, in the same run: fitparse and the columnar decoder on a sample of the export's FIT files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / ".cache"

#: Ten years: ~3,100 activities, ~10 M samples at 1 Hz.  --small: a year of two athletes.
FULL = dict(
    athletes=3,
    weeks=522,
    start="2015-01-05",
    seed=11,
    sample_interval_s=1,
    weekly_sessions=(1, 2, 2, 2, 3),
    easy_minutes=(35, 65),
    gpx_share=0.03,
    weigh_in_days=(7, 14),
)
SMALL = {**FULL, "athletes": 2, "weeks": 52, "start": "2024-01-01"}


# -- 1. the export ---------------------------------------------------------------------------


def export_for(params: dict) -> tuple[Path, Path]:
    """(export folder, folder holding the one held-back file), generated once per parameters."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    folder = CACHE / f"ten_years-{key}"
    export, held = folder / "export", folder / "incremental"
    if (folder / "complete").exists():
        return export, held
    from retrostride.pipelines.sample_export import TrainingVolume, generate_export

    shutil.rmtree(folder, ignore_errors=True)
    print(f"Generating the export into {folder} (once) …", flush=True)
    started = time.perf_counter()
    generate_export(
        export,
        seed=params["seed"],
        athletes=params["athletes"],
        weeks=params["weeks"],
        start=date.fromisoformat(params["start"]),
        sample_interval_s=params["sample_interval_s"],
        truth_dir=folder / "truth",
        volume=TrainingVolume(
            tuple(params["weekly_sessions"]),
            tuple(params["easy_minutes"]),
            params["gpx_share"],
            tuple(params["weigh_in_days"]),
        ),
    )
    athlete = sorted(p for p in export.iterdir() if p.is_dir())[0]
    runs = sorted(p for p in athlete.glob("*.fit") if not p.name.startswith("weight-"))
    (held / athlete.name).mkdir(parents=True)
    runs[len(runs) // 2].rename(held / athlete.name / runs[len(runs) // 2].name)
    (folder / "params.json").write_text(json.dumps(params, indent=1))
    (folder / "complete").write_text(f"{time.perf_counter() - started:.0f} s\n")
    return export, held


# -- 2 and 3. imports in a child process, its process tree watched -----------------------------


@dataclass
class ImportResult:
    wall_s: float  # import_paths, in the child, after its imports
    process_s: float  # the child process from start to end (Python and Dagster start-up included)
    peak_rss_mb: float  # of the child and all its descendants together
    cpu_s: float  # user + system time of the child and all its descendants
    files: dict  # ledger: files by status
    records: int
    decode: dict  # by format: files, records, summed decode seconds (in the workers)
    steps: dict  # Dagster step key → seconds, summed over runs
    runs: int
    events: dict = None  # Dagster events stored, by job and kind (each costs tens of ms in SQLite storage)


def run_import(home: Path, paths: list[Path], workers: int, environment: dict[str, str] | None = None) -> ImportResult:
    """`paths` imported in a child process with `home` as RETROSTRIDE_HOME (and `environment` on top)."""
    env = {
        **os.environ,
        "RETROSTRIDE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "RETROSTRIDE_INBOX": str(home / "inbox"),
        "RETROSTRIDE_WORKERS": str(workers),
        **(environment or {}),
    }
    started, cpu = time.perf_counter(), _children_cpu_s()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", *map(str, paths)], env=env, stdout=subprocess.PIPE, text=True
    )
    peak = PeakTreeRss(child.pid)
    peak.start()
    out, _ = child.communicate()
    process_s = time.perf_counter() - started
    peak.stop()
    if child.returncode:
        raise SystemExit(f"import failed (exit {child.returncode})")
    found = json.loads(out.strip().splitlines()[-1])
    return ImportResult(process_s=process_s, peak_rss_mb=peak.peak_mb, cpu_s=_children_cpu_s() - cpu, **found)


def _children_cpu_s() -> float:
    """CPU time of every finished descendant (a process's waited-for children count into its own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_import(paths: list[Path]) -> None:
    """In the child: import `paths` and print what happened as one JSON line."""
    from retrostride.assets.settings import Settings
    from retrostride.pipelines.runs import import_paths, instance_for
    from retrostride.warehouse.store import Warehouse

    settings = Settings.from_env()
    instance = instance_for(settings)
    before = {r.run_id for r in instance.get_runs()}
    since = datetime.now(UTC)
    started = time.perf_counter()
    import_paths(settings, paths, instance=instance)
    wall_s = time.perf_counter() - started
    steps: dict[str, float] = {}
    events: dict[str, dict[str, int]] = {}
    runs = [r for r in instance.get_runs() if r.run_id not in before]
    for run in runs:
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                steps[stat.step_key] = steps.get(stat.step_key, 0.0) + stat.end_time - stat.start_time
        kinds = events.setdefault(run.job_name, {})
        for entry in instance.all_logs(run.run_id):
            kind = entry.dagster_event.event_type_value if entry.dagster_event else "log message"
            kind = (
                kind if kind in ("ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION", "log message") else "other"
            )
            kinds[kind] = kinds.get(kind, 0) + 1
    ledger = Warehouse(settings.catalog).query(
        "SELECT format, status, count(*) AS files, sum(records) AS records, sum(decode_s) AS decode_s "
        "FROM import_ledger WHERE imported_at >= ? GROUP BY ALL",
        [since],
    )
    files = {s: int(ledger.filter(ledger["status"] == s)["files"].sum()) for s in sorted(set(ledger["status"]))}
    decode = {}
    for fmt in sorted(set(ledger["format"].drop_nulls())):
        rows = ledger.filter((ledger["format"] == fmt) & ledger["status"].is_in(["ok", "partial"]))
        decode[fmt] = {
            "files": int(rows["files"].sum()),
            "records": int(rows["records"].sum() or 0),
            "seconds": float(rows["decode_s"].sum() or 0),
        }
    for fmt, decoder, files_read in (
        Warehouse(settings.catalog)
        .query(
            "SELECT format, decoder, count(*) FROM import_ledger WHERE imported_at >= ? AND decoder IS NOT NULL GROUP BY ALL ORDER BY ALL",
            [since],
        )
        .rows()
    ):
        decode.setdefault(fmt, {}).setdefault("decoders", {})[decoder] = files_read
    records = sum(d.get("records", 0) for d in decode.values())
    print(
        json.dumps(
            {
                "wall_s": wall_s,
                "files": files,
                "records": records,
                "decode": decode,
                "steps": steps,
                "runs": len(runs),
                "events": events,
            }
        )
    )


class PeakTreeRss(threading.Thread):
    """Samples the summed resident memory of a process and all its descendants (Linux /proc)."""

    def __init__(self, pid: int, every_s: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak_mb, self._done = pid, every_s, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_mb = max(self.peak_mb, sum(_rss_mb(p) for p in _tree(self.pid)))
            self._done.wait(self.every_s)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


# -- 4. the decoder baseline -----------------------------------------------------------------


def decoder_baseline(export: Path, files: int) -> dict:
    """fitparse and the columnar decoder on the same FIT files of the export, one after the other."""
    from retrostride.connectors.fit import decode_fit
    from retrostride.connectors.fit_columnar import decode_fit_columnar

    runs = sorted(p for p in export.rglob("*.fit") if not p.name.startswith("weight-"))
    sample = runs[:: max(1, len(runs) // files)][:files]
    out = {"files": len(sample)}
    for name, decode in (("fitparse", decode_fit), ("columnar", decode_fit_columnar)):
        decode(sample[0])  # imports and tables
        started = time.perf_counter()
        out[name] = {"records": sum(len(decode(p).records) for p in sample), "seconds": time.perf_counter() - started}
    return out


# -- the report ------------------------------------------------------------------------------


def report(
    params: dict, bulk: ImportResult, incremental: ImportResult, baseline: dict, workers: int, home_mb: float
) -> None:
    from benchmarks.decode_corpus import machine

    print()
    print(
        f"Machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {workers} decoder workers"
    )
    print(
        f"Export: {params['athletes']} athletes × {params['weeks']} weeks from {params['start']}, "
        f"{bulk.decode.get('fit', {}).get('files', 0) + bulk.decode.get('gpx', {}).get('files', 0)} files decoded, "
        f"{bulk.records:,} samples; warehouse home afterwards {home_mb:,.0f} MB"
    )
    print()
    head = f"{'':34} {'wall s':>8} {'records/s':>12} {'peak RSS MB':>12} {'CPU s':>8}"
    print(head)
    print("-" * len(head))
    for label, result in (("ten-year export, end to end", bulk), ("one new file into it", incremental)):
        print(f"{label:34} {result.wall_s:8.1f} {_rate(result.records, result.wall_s):>12}")
        print(
            f"{'  … the whole process (start-up too)':34} {result.process_s:8.1f} {'':>12} {result.peak_rss_mb:12.0f} {result.cpu_s:8.1f}"
        )
    print()
    print(f"Dagster steps (summed over runs; bulk: {bulk.runs} runs, one new file: {incremental.runs} runs)")
    print(f"{'step':34} {'bulk s':>8} {'new file s':>10}")
    for step in sorted(set(bulk.steps) | set(incremental.steps), key=lambda s: -bulk.steps.get(s, 0)):
        print(f"{step:34} {bulk.steps.get(step, 0):8.2f} {incremental.steps.get(step, 0):10.2f}")
    outside = bulk.wall_s - sum(bulk.steps.values())
    print(
        f"{'(between steps: Dagster, planning)':34} {outside:8.2f} {incremental.wall_s - sum(incremental.steps.values()):10.2f}"
    )
    for label, result in (("bulk", bulk), ("one new file", incremental)):
        counts = "; ".join(
            f"{job}: " + ", ".join(f"{n} {kind.lower().replace('_', ' ')}" for kind, n in sorted(kinds.items()))
            for job, kinds in sorted((result.events or {}).items())
        )
        print(f"Dagster events stored, {label}: {counts}")
    print()
    print("Decoding in the bulk import (seconds summed over workers: decode, frames, lake write)")
    for fmt, d in bulk.decode.items():
        decoders = ", ".join(f"{n:,} by {name}" for name, n in d.get("decoders", {}).items())
        print(
            f"  {fmt}: {d.get('files', 0):,} files ({decoders}), {d.get('records', 0):,} records, {d.get('seconds', 0):.1f} s, "
            f"{_rate(d.get('records', 0), d.get('seconds', 0))} records/s per worker"
        )
    fitparse, columnar = baseline["fitparse"], baseline["columnar"]
    print(
        f"Baseline, {baseline['files']} of the export's FIT runs decoded in this process: "
        f"fitparse {fitparse['seconds']:.2f} s ({_rate(fitparse['records'], fitparse['seconds'])} records/s), "
        f"columnar {columnar['seconds']:.3f} s ({_rate(columnar['records'], columnar['seconds'])} records/s): "
        f"{fitparse['seconds'] / columnar['seconds']:.0f}×"
    )
    fit_records = bulk.decode.get("fit", {}).get("records", 0)
    if fitparse["records"]:
        print(
            f"  fitparse alone would need ~{fit_records / (fitparse['records'] / fitparse['seconds']) / 60:.0f} min "
            f"of one core for the export's {fit_records:,} FIT records"
        )


def _rate(records: int, seconds: float) -> str:
    return f"{records / seconds:,.0f}" if seconds > 0 and records else "-"


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a year of two athletes instead of ten years of three")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="decoder processes (default: CPU count)"
    )
    parser.add_argument(
        "--baseline-files", type=int, default=20, help="FIT runs decoded by both decoders for the baseline"
    )
    parser.add_argument("--child", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_import(args.child)
        return
    params = SMALL if args.small else FULL
    export, held = export_for(params)
    with tempfile.TemporaryDirectory(prefix="retrostride-ten-years-") as temporary:
        home = Path(temporary)
        print("Importing the export …", flush=True)
        bulk = run_import(home, [export], args.workers)
        print("Importing one new file …", flush=True)
        incremental = run_import(home, [held], args.workers)
        home_mb = _size_mb(home)
    baseline = decoder_baseline(export, args.baseline_files)
    report(params, bulk, incremental, baseline, args.workers, home_mb)
    print()
    print(json.dumps({"bulk": asdict(bulk), "incremental": asdict(incremental), "baseline": baseline}))


if __name__ == "__main__":
    main()
