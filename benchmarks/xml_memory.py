"""Peak memory and speed of the GPX and TCX decoders on one large generated file, streaming
decoders against the whole-document ones they replaced (from git), in the same run.

    python benchmarks/xml_memory.py [--mb 150] [--formats gpx,tcx] [--old-revision 9d6b316]

A GPX 1.1 file (Garmin TrackPointExtension: elevation, time, heart rate, cadence) and a TCX file of
about --mb megabytes each are generated once under benchmarks/.cache/.  Each decoder decodes the file
in a child process of its own; the child reports its peak RSS (VmHWM), its RSS after imports (the
baseline), the records decoded and the decoding time (wall and CPU: on a shared machine CPU time
is the steadier measure of speed).  The old decoders are the modules of
--old-revision (before streaming), loaded from git into the child.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
MODULES = {"gpx": ("connectors/gpx.py", "decode_gpx"), "tcx": ("connectors/tcx.py", "decode_tcx")}

GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench" xmlns="http://www.topografix.com/GPX/1/1" '
    'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n<trk><name>long</name><type>running</type><trkseg>\n'
)
GPX_POINT = (
    '  <trkpt lat="{lat:.7f}" lon="{lon:.7f}">\n    <ele>{ele:.1f}</ele>\n    <time>{time}</time>\n    <extensions>\n'
    "      <gpxtpx:TrackPointExtension>\n        <gpxtpx:hr>{hr}</gpxtpx:hr>\n        <gpxtpx:cad>{cad}</gpxtpx:cad>\n"
    "      </gpxtpx:TrackPointExtension>\n    </extensions>\n  </trkpt>\n"
)
GPX_TAIL = "</trkseg></trk>\n</gpx>\n"
TCX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">\n'
    '<Activities><Activity Sport="Running"><Id>2024-01-01T00:00:00Z</Id>\n<Lap StartTime="2024-01-01T00:00:00Z">'
    "<TotalTimeSeconds>1</TotalTimeSeconds><DistanceMeters>1</DistanceMeters><Track>\n"
)
TCX_POINT = (
    "  <Trackpoint><Time>{time}</Time><Position><LatitudeDegrees>{lat:.7f}</LatitudeDegrees><LongitudeDegrees>{lon:.7f}"
    "</LongitudeDegrees></Position><AltitudeMeters>{ele:.1f}</AltitudeMeters><DistanceMeters>{dist:.1f}</DistanceMeters>"
    "<HeartRateBpm><Value>{hr}</Value></HeartRateBpm><Cadence>{cad}</Cadence></Trackpoint>\n"
)
TCX_TAIL = "</Track></Lap></Activity></Activities>\n</TrainingCenterDatabase>\n"

CHILD = textwrap.dedent("""
    import json, sys, time, types
    from pathlib import Path
    def rss(field):
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(field))
    import polars, retrostride.connectors.gpx, retrostride.connectors.tcx  # the imports both decoders need
    source, function, path = sys.argv[1], sys.argv[2], sys.argv[3]
    if source == "current":
        module = __import__(f"retrostride.connectors.{function.split('_')[1]}", fromlist=[function])
    else:
        module = types.ModuleType("old_decoder")
        exec(compile(open(source).read(), source, "exec"), module.__dict__)
    baseline = rss("VmRSS:")
    started, cpu = time.perf_counter(), time.process_time()
    decoded = getattr(module, function)(Path(path))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"baseline": baseline, "peak": rss("VmHWM:"), "seconds": seconds, "cpu": cpu, "records": decoded.records.height,
                      "decoder": decoded.decoder}))
""")


def generate(fmt: str, megabytes: int) -> Path:
    """A generated file of about `megabytes` MB (cached)."""
    path = CACHE / f"long-{megabytes}mb.{fmt}"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    head, point, tail = (GPX_HEAD, GPX_POINT, GPX_TAIL) if fmt == "gpx" else (TCX_HEAD, TCX_POINT, TCX_TAIL)
    temporary = path.with_suffix(".part")
    with open(temporary, "w") as out:
        out.write(head)
        i = 0
        while out.tell() < megabytes * 1_000_000:
            block = []
            for _ in range(10_000):
                seconds = i
                time = f"2024-{1 + seconds // 2_592_000 % 12:02d}-{1 + seconds // 86_400 % 28:02d}T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"
                block.append(
                    point.format(
                        lat=46 + (i % 10_000) * 1e-5,
                        lon=14 + (i % 7_000) * 1e-5,
                        ele=300 + i % 50,
                        time=time,
                        hr=120 + i % 40,
                        cad=80 + i % 10,
                        dist=i * 2.8,
                    )
                )
                i += 1
            out.write("".join(block))
        out.write(tail)
    temporary.rename(path)
    return path


def measure(source: str, function: str, path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, source, function, str(path)], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode:
        return {
            "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        }
    return json.loads(result.stdout)


def old_module(relative: str, revision: str) -> Path:
    text = subprocess.run(
        ["git", "show", f"{revision}:{relative}"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    path = CACHE / f"old-{revision}-{Path(relative).name}"
    path.write_text(text)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=150)
    parser.add_argument("--formats", default="gpx,tcx")
    parser.add_argument("--old-revision", default="9d6b316")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        "| file | decoder | records | wall s | CPU s | records/s (CPU) | peak RSS | above imports | peak / file size |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        path = generate(fmt, args.mb)
        size = path.stat().st_size
        relative, function = MODULES[fmt]
        for label, source in (
            ("streaming", "current"),
            (f"whole document ({args.old_revision})", str(old_module(relative, args.old_revision))),
        ):
            found = measure(source, function, path)
            if "error" in found:
                print(f"| {path.name} ({size / 1e6:.0f} MB) | {label} | failed: {found['error']} ||||||")
                continue
            above = found["peak"] - found["baseline"]
            print(
                f"| {path.name} ({size / 1e6:.0f} MB) | {label} ({found['decoder']}) | {found['records']:,} | {found['seconds']:.1f} | "
                f"{found['cpu']:.1f} | {found['records'] / found['cpu']:,.0f} | {found['peak'] / 1e6:,.0f} MB | {above / 1e6:,.0f} MB | "
                f"{found['peak'] / size:.2f}x |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
