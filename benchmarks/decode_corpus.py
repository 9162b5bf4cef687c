"""FIT decode on the shared corpus: fitparse (`decode_fit`) and the columnar decoder, side by side.

    python benchmarks/decode_corpus.py [--repeat 5] [--no-memory] [--corpora PATH]

Each file is decoded by both decoders in turn in this one process (fitparse once, the columnar
decoder `--repeat` times, median), so both see the same machine load.  Times are wall-clock and
include `to_canonical`, which both share; its own cost is shown apart, as is the decoding proper
(bytes → FIT messages).  Peak memory is the peak RSS of one child process per decoder that decodes
the whole corpus, less its peak after imports and one small file.  Records/s count each decoder's
own records: fitparse keeps 1,785 of the Coros file's 11,272 (it rejects a field the FIT SDK reads).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrostride.connectors.fit import decode_fit
from retrostride.connectors.fit_canonical import to_canonical
from retrostride.connectors.fit_columnar import DECODER, decode_fit_columnar, read_fit_messages
from retrostride.connectors.fit_scan import Unsupported
from retrostride.warehouse.schema import DecodeError

DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"


@dataclass
class Row:
    name: str
    size: int
    records: int  # kept by the columnar decoder
    fitparse_records: int
    outcome: str  # ok, partial or rejected
    decoder: str  # which decoder produced the columnar result
    fitparse_s: float  # wall-clock
    columnar_s: float
    fitparse_cpu_s: float  # CPU time of this process (all threads)
    columnar_cpu_s: float
    messages_s: float | None  # columnar bytes → FIT messages, without to_canonical
    canonical_s: float | None  # to_canonical on those messages


def corpus(corpora: Path) -> list[Path]:
    with open(corpora / "manifest.csv", newline="") as handle:
        return [corpora / r["path"] for r in csv.DictReader(handle) if r["format"] == "fit"]


def run(decode, path: Path):
    try:
        return decode(path)
    except DecodeError as error:
        return error


def timed(fn, repeat: int) -> tuple[tuple[float, float], object]:
    """Median (wall, CPU) seconds of `repeat` calls, and the last result."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return (statistics.median(wall), statistics.median(cpu)), result


def measure(path: Path, repeat: int) -> Row:
    (fitparse_s, fitparse_cpu_s), reference = timed(lambda: run(decode_fit, path), 1)
    (columnar_s, columnar_cpu_s), decoded = timed(lambda: run(decode_fit_columnar, path), repeat)
    messages_s = canonical_s = None
    data = path.read_bytes()
    try:
        (messages_s, _), read = timed(lambda: read_fit_messages(data), repeat)
        messages = read.messages
        (canonical_s, _), _ = timed(lambda: to_canonical(messages, decoder=DECODER, decoder_version="bench"), repeat)
    except Unsupported:
        pass
    if isinstance(decoded, DecodeError):
        records, outcome, decoder = 0, "rejected", "fitparse" if "decoded by fitparse" in str(decoded) else DECODER
    else:
        records, outcome, decoder = len(decoded.records), decoded.status, decoded.decoder
    fitparse_records = 0 if isinstance(reference, DecodeError) else len(reference.records)
    if records != fitparse_records:
        outcome += f" (fitparse kept {fitparse_records})"
    return Row(
        path.name,
        len(data),
        records,
        fitparse_records,
        outcome,
        decoder,
        fitparse_s,
        columnar_s,
        fitparse_cpu_s,
        columnar_cpu_s,
        messages_s,
        canonical_s,
    )


def peak_rss_mb(decoder: str, corpora: Path) -> tuple[float, float]:
    """(peak RSS above the warm-up peak, warm-up peak) of a child decoding the whole corpus."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", decoder, "--corpora", str(corpora)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    baseline, peak = float(out[0]), float(out[1])
    return peak - baseline, baseline


def child(decoder: str, corpora: Path) -> None:
    decode = decode_fit if decoder == "fitparse" else decode_fit_columnar
    files = corpus(corpora)
    run(decode, min(files, key=lambda p: p.stat().st_size))  # lazy imports and pools are not the decoder's
    baseline = _memory_mb("VmHWM")
    for path in files:
        run(decode, path)
    print(baseline, _memory_mb("VmHWM"))


def _memory_mb(key: str) -> float:
    """This process's current (VmRSS) or peak (VmHWM) resident memory.  Not ru_maxrss: on Linux it
    keeps the parent's peak across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(key + ":"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = ", ".join(f"{p} {version(p)}" for p in ("fitparse", "numpy", "polars", "pyarrow", "garmin-fit-sdk"))
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"


def rate(records: int, seconds: float) -> str:
    return f"{records / seconds:,.0f}" if seconds > 0 and records else "-"


def report(rows: list[Row], memory: dict[str, tuple[float, float]] | None) -> None:
    head = f"{'file':42} {'records':>7} {'fitparse s':>10} {'columnar ms':>11} {'fitparse rec/s':>14} {'columnar rec/s':>14} {'ratio':>7}  result"
    print(head)
    print("-" * len(head))
    for r in rows:
        result = r.outcome + ("" if r.decoder == DECODER else "  (fallback: fitparse)")
        print(
            f"{r.name[:42]:42} {r.records:7d} {r.fitparse_s:10.3f} {r.columnar_s * 1e3:11.2f} "
            f"{rate(r.fitparse_records, r.fitparse_s):>14} {rate(r.records, r.columnar_s):>14} {r.fitparse_s / r.columnar_s:6.0f}×  {result}"
        )
    print("-" * len(head))

    def total(label: str, chosen: list[Row], cpu: bool = False) -> None:
        records, fitparse_records = sum(r.records for r in chosen), sum(r.fitparse_records for r in chosen)
        fitparse_s = sum(r.fitparse_cpu_s if cpu else r.fitparse_s for r in chosen)
        columnar_s = sum(r.columnar_cpu_s if cpu else r.columnar_s for r in chosen)
        print(
            f"{label[:42]:42} {records:7d} {fitparse_s:10.3f} {columnar_s * 1e3:11.2f} "
            f"{rate(fitparse_records, fitparse_s):>14} {rate(records, columnar_s):>14} {fitparse_s / columnar_s:6.0f}×"
        )

    native = [r for r in rows if r.decoder == DECODER]
    total(f"all {len(rows)} files", rows)
    total(f"without fallbacks ({len(native)} files)", native)
    total(f"all {len(rows)} files, CPU time", rows, cpu=True)
    total("without fallbacks, CPU time", native, cpu=True)
    staged = [r for r in native if r.messages_s is not None]
    canonical = sum(r.canonical_s for r in staged)
    messages = sum(r.messages_s for r in staged)
    fitparse_messages = sum(r.fitparse_s for r in staged) - canonical
    records, fitparse_records = sum(r.records for r in staged), sum(r.fitparse_records for r in staged)
    print()
    print(f"Stages over the {len(staged)} files the columnar decoder reads itself:")
    print(f"  to_canonical (shared by both decoders): {canonical * 1e3:8.1f} ms")
    print(
        f"  bytes → FIT messages: fitparse {fitparse_messages:8.3f} s ({rate(fitparse_records, fitparse_messages)} rec/s), "
        f"columnar {messages * 1e3:7.1f} ms ({rate(records, messages)} rec/s): {fitparse_messages / messages:,.0f}×"
    )
    if memory:
        print()
        for decoder, (peak, baseline) in memory.items():
            print(
                f"Peak memory, {decoder:9} decoding the whole corpus: {peak:7.1f} MB above the {baseline:.0f} MB of a warm process"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path(os.environ.get("RETROSTRIDE_CORPORA", DEFAULT_CORPORA)))
    parser.add_argument("--repeat", type=int, default=5, help="columnar runs per file (median)")
    parser.add_argument("--no-memory", action="store_true", help="skip the two child processes that measure peak RSS")
    parser.add_argument("--child", choices=("fitparse", "columnar"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpora)
        return
    files = corpus(args.corpora)
    print(f"Machine: {machine()}")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for path in files:  # warm-up: imports, CRC tables, profile tables, Polars
        run(decode_fit_columnar, path)
    rows = [measure(path, args.repeat) for path in files]
    print(f"Load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    memory = None if args.no_memory else {d: peak_rss_mb(d, args.corpora) for d in ("fitparse", "columnar")}
    report(rows, memory)


if __name__ == "__main__":
    main()
