"""Seeded mutants of real FIT and GPX files, decoded in a watched child process.

`fit_mutant` and `gpx_mutant` damage a file the ways real files are damaged (bit flips, truncation,
splices of two recordings, definition messages with wrong sizes, types or counts, absurd values);
most FIT mutants get a recomputed header and CRC so that the decoders go past the integrity checks
and meet the damage itself.  `Harness` decodes each mutant in a child process with a time limit,
so that a hang or a crash of the interpreter is seen and reported instead of stopping the run.

Used by tests/test_fuzz.py (a few hundred mutants) and benchmarks/fuzz_decoders.py (thousands).
"""

from __future__ import annotations

import multiprocessing
import random
import re
import struct
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: Outcomes a decoder may have: anything else is a bug.
ACCEPTED = ("ok", "partial", "failed")


# --- FIT -------------------------------------------------------------------------------------------


def crc16(data: bytes, crc: int = 0) -> int:
    """FIT CRC-16 (reflected 0xA001), written here independently of connectors.fit_crc."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xA001 if crc & 1 else 0)
    return crc


@dataclass
class FitLayout:
    """Where the messages of a FIT file's first chained file are: (offset, size, is_definition)."""

    header_size: int
    messages: list[tuple[int, int, bool]]
    #: offsets of each definition's field triplets: (definition offset, field count, dev count)
    definitions: list[tuple[int, int, int]]


def fit_layout(data: bytes) -> FitLayout | None:
    """The message framing of an intact FIT file (None if it cannot be walked)."""
    if len(data) < 12 or data[8:12] != b".FIT":
        return None
    header_size = data[0]
    (data_size,) = struct.unpack_from("<I", data, 4)
    end = min(header_size + data_size, len(data))
    pos, sizes, messages, definitions = header_size, {}, [], []
    while pos < end:
        head = data[pos]
        if head & 0xC0 == 0x40:
            if pos + 6 > end:
                break
            count = data[pos + 5]
            size = 6 + 3 * count
            dev = 0
            if head & 0x20:
                if pos + size >= end:
                    break
                dev = data[pos + size]
                size += 1 + 3 * dev
            fields = data[pos + 6 : pos + 6 + 3 * count]
            body = sum(fields[i + 1] for i in range(0, len(fields), 3))
            if head & 0x20:
                at = pos + 6 + 3 * count + 1
                body += sum(data[at + 3 * i + 1] for i in range(dev) if at + 3 * i + 1 < len(data))
            sizes[head & 0xF] = body
            messages.append((pos, size, True))
            definitions.append((pos, count, dev))
        else:
            local = (head >> 5) & 0x3 if head & 0x80 else head & 0xF
            if local not in sizes:
                break
            size = 1 + sizes[local]
            messages.append((pos, size, False))
        pos += size
    return FitLayout(header_size, messages, definitions)


def refit(body: bytes, header: bytes, fix_crc: bool = True) -> bytes:
    """A FIT file from its header bytes and message bytes: data size and header CRC redone, and the
    file CRC too (else a CRC that cannot match)."""
    header = bytearray(header)
    struct.pack_into("<I", header, 4, len(body))
    if len(header) >= 14:
        header[12:14] = struct.pack("<H", crc16(bytes(header[:12])))
    crc = crc16(bytes(header) + body)
    crc = crc if fix_crc else crc ^ 0x5A5A
    return bytes(header) + body + struct.pack("<H", crc)


def fit_mutant(data: bytes, rng: random.Random, other: bytes | None = None) -> tuple[str, bytes]:
    """(mutation name, mutated bytes) of the FIT file `data`; `other` is a second file for splices."""
    layout = fit_layout(data)
    if layout is None or not layout.messages:
        return "bitflip", _flip(data, rng, 12)
    header = data[: layout.header_size]
    start = layout.header_size
    end = layout.messages[-1][0] + layout.messages[-1][1]
    body = bytearray(data[start:end])
    fix = rng.random() < 0.85  # most mutants pass the CRC check so that the decoders meet the damage
    kind = rng.choice(
        [
            "bitflip",
            "bytes",
            "truncate",
            "truncate-clean",
            "splice",
            "field-size",
            "definition",
            "data-size",
            "drop-messages",
            "repeat-messages",
            "header-byte",
            "compressed-time",
        ]
    )
    if kind == "bitflip":
        return kind, refit(_flip(bytes(body), rng, 0), header, fix)
    if kind == "bytes":
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(body))
            body[at] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return kind, refit(bytes(body), header, fix)
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    if kind == "truncate-clean":
        cut = rng.choice(layout.messages)[0] - start
        return kind, refit(bytes(body[:cut]), header, fix)
    if kind == "splice":
        donor = fit_layout(other) if other else None
        if donor is None or not donor.messages:
            return kind, refit(bytes(body[: rng.randrange(len(body))]) + bytes(body), header, fix)
        cut = rng.choice(layout.messages)[0] - start
        at = rng.choice(donor.messages)[0]
        tail = other[at : donor.messages[-1][0] + donor.messages[-1][1]]
        return kind, refit(bytes(body[:cut]) + tail, header, fix)
    if kind in ("field-size", "definition") and layout.definitions:
        pos, count, dev = rng.choice(layout.definitions)
        at = pos - start
        if kind == "field-size" and count:
            slot = at + 6 + 3 * rng.randrange(count) + 1
            body[slot] = rng.choice(
                [0, 1, 2, 3, 5, 7, body[slot] + 1, max(body[slot] - 1, 0), body[slot] * 2 % 256, 255]
            )
        else:
            what = rng.choice(["global", "architecture", "count", "base", "number", "header", "dev-count"])
            if what == "global":
                struct.pack_into("<H", body, at + 3, rng.choice([0, 20, 18, 19, 21, 34, 65535, rng.randrange(65536)]))
            elif what == "architecture":
                body[at + 2] = rng.choice([0, 1, 2, 255])
            elif what == "count":
                body[at + 5] = rng.choice([0, 1, max(count - 1, 0), count + 1, 255])
            elif what == "base" and count:
                body[at + 6 + 3 * rng.randrange(count) + 2] = rng.choice(
                    [
                        0x00,
                        0x01,
                        0x02,
                        0x83,
                        0x84,
                        0x85,
                        0x86,
                        0x07,
                        0x88,
                        0x89,
                        0x8A,
                        0x8B,
                        0x8C,
                        0x0D,
                        0x8E,
                        0x8F,
                        0x90,
                        0x0A,
                        0x1F,
                        0xFF,
                    ]
                )
            elif what == "number" and count:
                body[at + 6 + 3 * rng.randrange(count)] = rng.choice([253, 0, 2, 3, 5, 6, 7, 255, rng.randrange(256)])
            elif what == "header":
                body[at] = 0x40 | rng.choice([0x20, 0x10, rng.randrange(16), 0x2F])
            elif what == "dev-count" and dev:
                body[at + 6 + 3 * count] = rng.choice([0, dev + 1, 255])
            kind = f"definition-{what}"
        return kind, refit(bytes(body), header, fix)
    if kind == "data-size":
        mutated = bytearray(data)
        struct.pack_into("<I", mutated, 4, rng.choice([0, 1, len(data) * 2, 0xFFFFFFFF, rng.randrange(len(data))]))
        if layout.header_size >= 14 and fix:
            mutated[12:14] = struct.pack("<H", crc16(bytes(mutated[:12])))
        return kind, bytes(mutated)
    if kind in ("drop-messages", "repeat-messages"):
        first = rng.randrange(len(layout.messages))
        last = min(len(layout.messages) - 1, first + rng.randint(0, 20))
        a, b = layout.messages[first][0] - start, layout.messages[last][0] + layout.messages[last][1] - start
        chunk = bytes(body[a:b])
        mutated = body[:a] + body[b:] if kind == "drop-messages" else body[:b] + chunk * rng.randint(1, 3) + body[b:]
        return kind, refit(bytes(mutated), header, fix)
    if kind == "header-byte":
        pos = rng.choice(layout.messages)[0] - start
        body[pos] = rng.randrange(256)
        return kind, refit(bytes(body), header, fix)
    # compressed-time: data message headers turned into compressed-timestamp headers
    data_messages = [m for m in layout.messages if not m[2]]
    for pos, _, _ in rng.sample(data_messages, min(len(data_messages), rng.randint(1, 10))):
        local = body[pos - start] & 0xF
        if local < 4:
            body[pos - start] = 0x80 | local << 5 | rng.randrange(32)
    return "compressed-time", refit(bytes(body), header, fix)


def _flip(data: bytes, rng: random.Random, protect: int) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(protect, len(mutated)) if len(mutated) > protect else rng.randrange(max(len(mutated), 1))
        if mutated:
            mutated[at] ^= 1 << rng.randrange(8)
    return bytes(mutated)


# --- GPX -------------------------------------------------------------------------------------------

_ABSURD = ["400", "-400", "1e309", "-1e309", "nan", "inf", "", "abc", "99999999999999999999999", "0x10", " 12 ", "1,5"]
_TIMES = [
    "1970-01-01T00:00:00Z",
    "2100-06-01T12:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2019-13-45T25:61:61Z",
    "yesterday",
    "",
    "2019-05-01T10:00:00+25:00",
    "2019-05-01 10:00:00",
]
_NUMBER = re.compile(rb'(lat|lon)="[^"]*"|<(ele|hr|cad|atemp|power|speed)>[^<]*<|<time>[^<]*<')


def gpx_mutant(data: bytes, rng: random.Random, other: bytes | None = None) -> tuple[str, bytes]:
    """(mutation name, mutated bytes) of the GPX file `data`."""
    kind = rng.choice(
        [
            "truncate",
            "bitflip",
            "values",
            "values",
            "drop-span",
            "repeat-span",
            "splice",
            "encoding",
            "nesting",
            "entity",
        ]
    )
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    if kind == "bitflip":
        return kind, _flip(data, rng, 0)
    if kind == "values":
        matches = list(_NUMBER.finditer(data))
        if not matches:
            return "bitflip", _flip(data, rng, 0)
        out, last = [], 0
        for m in sorted(rng.sample(matches, min(len(matches), rng.randint(1, 12))), key=lambda m: m.start()):
            text = m.group(0)
            if text.startswith((b"lat", b"lon")):
                new = text.split(b"=")[0] + b'="' + rng.choice(_ABSURD).encode() + b'"'
            elif text.startswith(b"<time>"):
                new = b"<time>" + rng.choice(_TIMES).encode() + b"<"
            else:
                tag = text[1 : text.index(b">")]
                new = b"<" + tag + b">" + rng.choice(_ABSURD + ["2000", "-5", "200"]).encode() + b"<"
            out += [data[last : m.start()], new]
            last = m.end()
        return kind, b"".join(out) + data[last:]
    if kind in ("drop-span", "repeat-span", "splice"):
        tags = [m.start() for m in re.finditer(rb"<", data)] or [0]
        a, b = sorted(rng.sample(tags, 2)) if len(tags) > 1 else (0, len(data))
        if kind == "drop-span":
            return kind, data[:a] + data[b:]
        if kind == "repeat-span":
            return kind, data[:b] + data[a:b] * rng.randint(1, 3) + data[b:]
        donor = other or data
        donor_tags = [m.start() for m in re.finditer(rb"<", donor)] or [0]
        return kind, data[:a] + donor[rng.choice(donor_tags) :]
    if kind == "encoding":
        at = rng.randrange(len(data))
        return kind, data[:at] + rng.choice(
            [b"\xff\xfe", b"\xc3\x28", b"\x00", b"\xef\xbb\xbf", "é".encode("latin-1")]
        ) + data[at:]
    if kind == "nesting":
        at = data.find(b"<trkseg>")
        at = at if at >= 0 else len(data) // 2
        depth = rng.choice([100, 5000, 50000])
        return kind, data[:at] + b"<extensions>" * depth + b"</extensions>" * depth + data[at:]
    laughs = b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    return kind, laughs + data[data.find(b"<gpx") :] if b"<gpx" in data else laughs + data


# --- the watched child process ---------------------------------------------------------------------


#: An exception's class name in a reason ("TypeError: ..."): the ledger says what is wrong in words.
PYTHON_ERROR = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception)\b")


def decode_outcome(decoder: str, path: str) -> tuple[str, str | None, int]:
    """(status, reason, records) of one decode as the importer would see it; status 'bug' for an
    exception other than DecodeError or a result that breaks the decoders' contract."""
    import polars as pl

    from retrostride.connectors.fit import decode_fit
    from retrostride.connectors.fit_columnar import decode_fit_columnar
    from retrostride.connectors.frames import warehouse_frames
    from retrostride.connectors.gpx import decode_gpx
    from retrostride.connectors.tcx import decode_tcx
    from retrostride.warehouse.schema import (
        FILE_ACTIVITIES,
        FILE_BODY_MEASUREMENTS,
        FILE_LAPS,
        FILE_RECORDS,
        DecodeError,
    )

    decoders = {"fitparse": decode_fit, "columnar": decode_fit_columnar, "gpx": decode_gpx, "tcx": decode_tcx}
    if ":" in decoder:  # "module:function", e.g. a misbehaving decoder that tests the harness
        import importlib

        module, name = decoder.split(":")
        decoders[decoder] = getattr(importlib.import_module(module), name)
    try:
        decoded = decoders[decoder](Path(path))
    except DecodeError as error:
        reason = str(error)
        if not reason.strip():
            return "bug", "DecodeError without a reason", 0
        if PYTHON_ERROR.search(reason):
            return "bug", f"Python exception text in the reason: {reason}", 0
        return "failed", reason, 0
    except Exception:
        return "bug", traceback.format_exc(limit=6), 0
    problems = [
        name
        for name, frame, schema in [
            ("records", decoded.records, FILE_RECORDS),
            ("activities", decoded.activities, FILE_ACTIVITIES),
            ("laps", decoded.laps, FILE_LAPS),
            ("body_measurements", decoded.body_measurements, FILE_BODY_MEASUREMENTS),
        ]
        if not isinstance(frame, pl.DataFrame) or frame.schema != schema
    ]
    if problems:
        return "bug", f"frames off the canonical schema: {problems}", len(decoded.records)
    if decoded.status not in ("ok", "partial") or (decoded.status == "partial" and not decoded.reason):
        return "bug", f"status {decoded.status!r} with reason {decoded.reason!r}", len(decoded.records)
    try:  # what the importer does next must not fail either
        from retrostride.connectors.validate import validate

        checked, _ = validate(decoded)
        warehouse_frames(checked, "0" * 64, "fuzz", "Europe/Berlin")
    except Exception:
        return "bug", "after decoding: " + traceback.format_exc(limit=6), len(decoded.records)
    return decoded.status, decoded.reason, len(decoded.records)


def _serve(connection) -> None:
    """Child process: decode what the parent sends until it sends None."""
    while True:
        job = connection.recv()
        if job is None:
            return
        connection.send(decode_outcome(*job))


@dataclass
class Result:
    decoder: str
    source: str
    mutation: str
    status: str  # ok | partial | failed | bug | hang | crash
    reason: str | None
    records: int
    mutant: bytes = field(repr=False, default=b"")


class Harness:
    """Decodes files in one child process; a decode that takes longer than `timeout_s` is a hang."""

    def __init__(self, timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        self.context = multiprocessing.get_context("spawn")
        self.folder = tempfile.TemporaryDirectory(prefix="retrostride-fuzz-")
        self.process = None
        self.connection = None

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        self.connection = parent

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self.connection.send(None)
                self.process.join(5)
            except OSError:
                pass
        self._stop()
        self.folder.cleanup()

    def decode(self, decoder: str, data: bytes, suffix: str) -> tuple[str, str | None, int]:
        if self.process is None:
            self._start()
        path = Path(self.folder.name) / f"mutant{suffix}"
        path.write_bytes(data)
        try:
            self.connection.send((decoder, str(path)))
            if self.connection.poll(self.timeout_s):
                return self.connection.recv()
        except (EOFError, OSError):
            code = self.process.exitcode if self.process else None
            self._stop()
            return "crash", f"decoder process died (exit code {code})", 0
        self._stop()
        return "hang", f"no result after {self.timeout_s:.0f} s", 0


def run(files: list[Path], mutants: int, seed: int, timeout_s: float = 60.0, progress=None) -> list[Result]:
    """`mutants` mutants of `files` (FIT through both FIT decoders, GPX and TCX through theirs, with
    the same XML mutations), seeded."""
    rng = random.Random(seed)
    contents = {p: p.read_bytes() for p in files}
    fits = [p for p in files if p.suffix.lower() == ".fit"]
    xmls = [p for p in files if p.suffix.lower() in (".gpx", ".tcx")]
    results: list[Result] = []
    with Harness(timeout_s) as harness:
        for i in range(mutants):
            local = random.Random(rng.getrandbits(64))
            is_fit = bool(fits) and (not xmls or local.random() < 0.7)
            pool = fits if is_fit else xmls
            source = local.choice(pool)
            other = contents[local.choice(pool)]
            mutation, mutant = (fit_mutant if is_fit else gpx_mutant)(contents[source], local, other)
            suffix = source.suffix.lower()
            for decoder in ("fitparse", "columnar") if is_fit else (suffix[1:],):
                status, reason, records = harness.decode(decoder, mutant, suffix)
                results.append(Result(decoder, source.name, mutation, status, reason, records, mutant))
            if progress:
                progress(i + 1, results)
    return results


def summary(results: list[Result]) -> dict[str, Counter]:
    """Outcome counts per decoder."""
    out: dict[str, Counter] = {}
    for r in results:
        out.setdefault(r.decoder, Counter())[r.status] += 1
    return out
