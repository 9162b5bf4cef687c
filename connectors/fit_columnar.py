"""FIT files decoded as columns: the import hot path.

`connectors.fit_scan` walks the framing once and notes where every data message starts; here each
distinct message layout gathers its messages' bytes with one NumPy fancy index over a structured
view of the file, and every wanted field becomes a column with scale, offset and invalid values
applied vectorised.  Components (e.g. `compressed_speed_distance` → speed and distance),
compressed-timestamp headers and `timestamp_16` are resolved over whole columns too.  The result is
the same `FitMessages` that `connectors.fit` builds with fitparse, handed to the same `to_canonical`.

fitparse stays the reference (tests/test_fit_columnar.py compares both on the corpus).  Where a name
is given twice in one message, the first non-null value in fitparse's field order wins, as in
`connectors.fit`.  Deliberate differences, all where fitparse 1.2.0 is wrong or outdated:
- Profile: names come from the FIT SDK's current profile, so products, sports and manufacturers newer
  than fitparse's 2020 profile get their names (fitparse gives the number), and a Tacx product is
  a `garmin_product` as the SDK says.  `weight_scale.bmi` (field 13, unknown to fitparse) is read.
- Developer fields: their bytes are skipped here (`connectors.fit_developer` reads their values with
  fitparse when record messages carry any).  A field named like a wanted one (e.g. `power`) is a
  fallback value after the native fields, as in fitparse; but an undescribed developer field is not
  an error (fitparse rejects the file, and remembers descriptions across files in a global table).
- Marker values of number types (message_index 0x0FFF 'mask' …) stay numbers; weight 'calculating'
  (0xFFFE) is null rather than the word.
- `timestamp_16` is resolved against the last full timestamp when a message type asks for both
  `timestamp` and `timestamp_16`; fitparse leaves `timestamp` empty.
- A field whose size is not a multiple of its base type's is read as uint8s, as the FIT SDK does
  (`notes` says which); fitparse rejects the file at that definition and keeps only what came before.
Anything else the fast path does not handle (an unknown base type, an array or a string where the
profile has one number, in a field the canonical schema uses) is decoded by fitparse instead, and the
returned file says so: `decoder` is "fitparse" and `notes` names the construct.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from garmin_fit_sdk import Profile

from retrostride.connectors.fit import MIN_RECOVERED_RECORDS, damage_reason, decode_fit, settle
from retrostride.connectors.fit_canonical import FIT_FIELDS, FitMessages, to_canonical
from retrostride.connectors.fit_developer import carries_developer_fields, with_developer_fields
from retrostride.connectors.fit_profile import (
    BASE_TYPES,
    BYTE,
    STRING,
    TIMESTAMP_FIELD,
    Component,
    FieldSpec,
    MessageSpec,
    message_specs,
)
from retrostride.connectors.fit_scan import Definition, Unsupported, Walk, walk
from retrostride.warehouse.schema import DecodedFile, DecodeError

DECODER = "retrostride-columnar"
_SDK = Profile["version"]
DECODER_VERSION = f"{version('retrostride')}+fitsdk{_SDK['major']}.{_SDK['minor']}.{_SDK['patch']}"

FIT_EPOCH_S = 631065600  # 1989-12-31T00:00:00Z in Unix seconds (FIT protocol, date_time)
DEVICE_TIME_LIMIT = 0x10000000  # date_time values below this count from device power-on (FIT protocol)


def decode_fit_columnar(path: Path, *, min_recovered_records: int = MIN_RECOVERED_RECORDS) -> DecodedFile:
    """Decode a FIT file column by column; same frames, damage rules and reasons as `decode_fit`.

    Constructs the fast path does not handle are decoded by fitparse, and the result says so.
    """
    data = Path(path).read_bytes()
    try:
        read = read_fit_messages(data)
    except Unsupported as construct:
        decoded = _fall_back(Path(path), str(construct), min_recovered_records)
        return with_developer_fields(decoded, Path(path), carries_developer_fields(walk(data)))
    reason = damage_reason(*read.damage) if read.damage else None
    if reason and not reason[1]:
        raise DecodeError(reason[0])  # a bad header or CRC: nothing in the file can be trusted
    decoded = to_canonical(read.messages, decoder=DECODER, decoder_version=DECODER_VERSION)
    if read.irregular:
        decoded = replace(decoded, notes="; ".join([*read.irregular, *([decoded.notes] if decoded.notes else [])]))
    return with_developer_fields(settle(decoded, reason, min_recovered_records), Path(path), read.developer)


def _fall_back(path: Path, construct: str, min_recovered_records: int) -> DecodedFile:
    note = f"decoded by fitparse: the columnar decoder does not support {construct}"
    try:
        decoded = decode_fit(path, min_recovered_records=min_recovered_records)
    except DecodeError as error:
        raise DecodeError(f"{error}; {note}") from None
    return replace(decoded, notes="; ".join([note, *([decoded.notes] if decoded.notes else [])]))


class FitRead(NamedTuple):
    """What `read_fit_messages` found."""

    messages: FitMessages
    damage: tuple | None  # (kind, byte, detail) of the first damage, if any
    irregular: list[str]  # definitions read the FIT SDK's way rather than fitparse's
    developer: bool = False  # whether record messages carry developer fields (`connectors.fit_developer`)


def read_fit_messages(data: bytes, fit_fields: dict[str, tuple[str, ...]] = FIT_FIELDS) -> FitRead:
    """The wanted fields of every message before any damage, the damage, and what was irregular.

    Raises `Unsupported` for what only fitparse can decode.
    """
    framing = walk(data)
    if framing.damage and framing.damage[0] in ("short", "header", "crc"):
        return FitRead({}, framing.damage, framing.irregular)  # nothing before it can be trusted
    specs = message_specs(fit_fields)
    if not framing.starts:
        return FitRead({}, framing.damage, framing.irregular)
    messages = _Decoder(data, framing, specs).messages()
    return FitRead(messages, framing.damage, framing.irregular, carries_developer_fields(framing))


@dataclass
class _Source:
    """One candidate value for a column: values, which rows hold one, and a pending accumulation."""

    values: np.ndarray
    valid: np.ndarray
    accumulate: Component | None = None
    pending: np.ndarray | None = None  # rows whose values still need accumulating


class _Decoder:
    def __init__(self, data: bytes, framing: Walk, specs: dict[int, MessageSpec]):
        self.data = data
        self.framing = framing
        self.specs = specs
        self.starts = np.array(framing.starts, dtype=np.int64)
        self.headers = np.frombuffer(data, dtype=np.uint8)[self.starts]
        self.compressed = self.headers >= 0x80
        self.resolve_16 = {num for num, s in specs.items() if {"timestamp", "timestamp_16"} <= set(s.wanted)}
        self.need_times = bool(self.compressed.any()) or bool(self.resolve_16)

    def messages(self) -> FitMessages:
        definitions = self.framing.definitions
        layouts: dict[tuple, int] = {}
        group_of_definition = np.array(
            [layouts.setdefault(d.layout, len(layouts)) for d in definitions], dtype=np.int64
        )
        first_of_group = {}
        for d, g in zip(definitions, group_of_definition.tolist()):
            first_of_group.setdefault(g, d)
        group = group_of_definition[_definition_of(self.headers, definitions)]
        order = np.argsort(group, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(group, minlength=len(layouts)))))

        by_type: dict[int, list[tuple[np.ndarray, dict[str, list[_Source]]]]] = {}
        time_sets: list[tuple[np.ndarray, np.ndarray]] = []  # (message index, timestamp) of every full timestamp
        for g, d in first_of_group.items():
            spec = self.specs.get(d.global_num)
            has_time = self.need_times and (
                any(num == TIMESTAMP_FIELD for num, _, _ in d.fields)
                or any(f[0] == TIMESTAMP_FIELD for f in d.dev_fields)
            )
            if spec is None and not has_time:
                continue
            index = order[bounds[g] : bounds[g + 1]]
            if not len(index):
                continue
            sources, times = _decode_layout(self.data, self.starts[index], d, spec, has_time)
            time_sets.extend((index[ok], values[ok]) for values, ok in times)
            if spec is not None:
                by_type.setdefault(d.global_num, []).append((index, sources))

        message_times = self._message_times(time_sets) if self.need_times else None
        out: FitMessages = {}
        for num, parts in by_type.items():
            out[self.specs[num].name] = self._frame(self.specs[num], parts, message_times)
        return out

    def _frame(self, spec: MessageSpec, parts: list, message_times) -> pa.Table:
        """One message type's table, rows in file order, from the parts decoded per layout."""
        if len(parts) == 1:  # one layout: its rows are already in file order
            index, sources = parts[0]
            candidates = {name: list(sources.get(name, ())) for name in spec.wanted}
        else:
            index = np.concatenate([i for i, _ in parts])
            order = np.argsort(index, kind="stable")
            index = index[order]
            candidates = {}
            for name in spec.wanted:
                ranks = max(len(sources.get(name, ())) for _, sources in parts)
                candidates[name] = [_stack(parts, name, r, order) for r in range(ranks)]
        columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        compressed = self.compressed[index]
        for name in spec.wanted:
            stacked = candidates[name]
            self._accumulate(spec, name, stacked, index)
            if name == "timestamp" and message_times is not None and compressed.any():
                times, _ = message_times  # a compressed header's time comes after the message's own fields
                stacked.append(_Source(times[index], compressed))
            columns[name] = _coalesce(stacked, len(index))
        if spec.num in self.resolve_16 and message_times is not None:
            columns["timestamp"] = self._timestamp_16(columns, index, message_times)
        return pa.table([_arrow(spec.names.get(name), *columns[name]) for name in spec.wanted], names=list(spec.wanted))

    def _accumulate(self, spec: MessageSpec, name: str, stacked: list[_Source], index: np.ndarray) -> None:
        """Unwrap rolling counters (e.g. 12-bit compressed distance) in file order, then scale them.

        Like fitparse, the counter starts again from 0 at every definition of the message that has
        the counting field, and at every chained file.
        """
        pending = [(r, s) for r, s in enumerate(stacked) if s.accumulate is not None]
        if not pending:
            return
        component = pending[0][1].accumulate
        rows = [(np.flatnonzero(s.valid if s.pending is None else s.pending & s.valid), r) for r, s in pending]
        where = np.concatenate([w for w, _ in rows])
        rank = np.concatenate([np.full(len(w), r) for w, r in rows])
        raw = np.concatenate([stacked[r].values[w] for w, r in rows]).astype(np.int64)
        sequence = np.argsort(where, kind="stable")
        where, rank, raw = where[sequence], rank[sequence], raw[sequence]
        resets = np.array(
            sorted(
                [d.first for d in self.framing.definitions if d.global_num == spec.num and _counts(spec, d, name)]
                + self.framing.chain_starts
            ),
            dtype=np.int64,
        )
        segment = np.searchsorted(resets, index[where], side="right")
        unwrapped = _unwrap(raw, segment, component.bits)
        value = unwrapped / component.scale - component.offset if _scaled(component) else unwrapped
        for r, s in pending:
            mine = rank == r
            s.values = s.values.astype(np.result_type(s.values, value), copy=True)
            s.values[where[mine]] = value[mine]

    def _message_times(self, time_sets: list) -> tuple[np.ndarray, np.ndarray]:
        """Every message's running timestamp (fitparse's accumulator) after its own fields and header.

        Full timestamps set it; a compressed header adds its 5-bit offset with roll-over; each
        chained file starts again from 0.
        """
        n = len(self.starts)
        set_index = np.concatenate([i for i, _ in time_sets]) if time_sets else np.zeros(0, np.int64)
        set_value = np.concatenate([v for _, v in time_sets]).astype(np.int64) if time_sets else np.zeros(0, np.int64)
        chains = np.array(self.framing.chain_starts, dtype=np.int64)
        # Order of events inside message i: chain reset (3i), full timestamps (3i+1), header offset (3i+2).
        anchor_key = np.concatenate([3 * chains, 3 * set_index + 1])
        anchor_value = np.concatenate([np.zeros(len(chains), np.int64), set_value])
        sequence = np.argsort(anchor_key, kind="stable")
        anchor_key, anchor_value = anchor_key[sequence], anchor_value[sequence]
        compressed = np.flatnonzero(self.compressed)
        offsets = (self.headers[compressed] & 0x1F).astype(np.int64)
        resolved = _roll_forward(anchor_key, anchor_value, 3 * compressed + 2, offsets, 5)
        key = np.concatenate([anchor_key, 3 * compressed + 2])
        value = np.concatenate([anchor_value, resolved])
        sequence = np.argsort(key, kind="stable")
        key, value = key[sequence], value[sequence]
        last = np.searchsorted(key, 3 * np.arange(n) + 3, side="left") - 1  # last event up to the end of message i
        times = np.where(last >= 0, value[np.maximum(last, 0)], 0)
        return times, (key, value)

    def _timestamp_16(self, columns: dict, index: np.ndarray, message_times) -> tuple[np.ndarray, np.ndarray]:
        """`timestamp` where only `timestamp_16` is given: the low 16 bits of a time after the last full one."""
        times, has_time = columns["timestamp"]
        short, has_short = columns["timestamp_16"]
        _, (key, value) = message_times
        todo = np.flatnonzero(has_short & ~has_time)
        if not len(todo):
            return times, has_time
        resolved = _roll_forward(key, value, 3 * index[todo] + 2.5, short[todo].astype(np.int64), 16)
        times = times.astype(np.int64, copy=True)
        times[todo] = resolved
        return times, has_time | has_short


def _stack(parts: list, name: str, rank: int, order: np.ndarray) -> _Source:
    """The `rank`-th candidate for `name` of every layout, stacked in file order."""
    values, valid, pending = [], [], []
    dtype = np.result_type(*[s[name][rank].values for _, s in parts if len(s.get(name, ())) > rank])
    accumulate = None
    for index, sources in parts:
        found = sources.get(name, ())
        if len(found) > rank:
            source = found[rank]
            values.append(source.values.astype(dtype, copy=False))
            valid.append(source.valid)
            pending.append(np.full(len(index), source.accumulate is not None))
            accumulate = accumulate or source.accumulate
        else:
            values.append(np.zeros(len(index), dtype=dtype))
            valid.append(np.zeros(len(index), dtype=bool))
            pending.append(np.zeros(len(index), dtype=bool))
    return _Source(
        np.concatenate(values)[order], np.concatenate(valid)[order], accumulate, np.concatenate(pending)[order]
    )


def _definition_of(headers: np.ndarray, definitions: list[Definition]) -> np.ndarray:
    """The definition (index into `definitions`) in force for each data message: the last one of
    its local message type defined before it."""
    local = np.where(headers >= 0x80, (headers >> 5) & 0x3, headers & 0xF).astype(np.int64)
    span = len(headers) + 1
    keys = np.array([d.local * span + d.first for d in definitions], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    found = np.searchsorted(keys[order], local * span + np.arange(len(headers)), side="right") - 1
    return order[found]


def _counts(spec: MessageSpec, d: Definition, name: str) -> bool:
    """Whether definition `d` has a field whose component counts into column `name`."""
    return any(
        c.accumulate and c.target == name
        for num, _, _ in d.fields
        if num in spec.fields
        for c in spec.fields[num].components
    )


def _unwrap(raw: np.ndarray, segment: np.ndarray, bits: int) -> np.ndarray:
    """A rolling `bits`-bit counter made monotonic: +2**bits at each roll-over inside a segment."""
    rolled = np.zeros(len(raw), dtype=np.int64)
    rolled[1:] = (raw[1:] < raw[:-1]) & (segment[1:] == segment[:-1])
    count = np.cumsum(rolled)
    return raw + (count - _at_segment_start(count, segment)) * (1 << bits)


def _at_segment_start(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Each element's value at the first element of its (contiguous) segment."""
    first = np.ones(len(values), dtype=bool)
    first[1:] = segment[1:] != segment[:-1]
    return values[np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))]


def _roll_forward(
    anchor_key: np.ndarray, anchor_value: np.ndarray, key: np.ndarray, low: np.ndarray, bits: int
) -> np.ndarray:
    """Times given only by their low `bits` bits, each after the previous one or the last anchor.

    t = previous + ((low - previous) mod 2**bits): the FIT rule for compressed-timestamp headers
    (5 bits) and `timestamp_16` (16 bits).
    """
    if not len(key):
        return np.zeros(0, dtype=np.int64)
    anchor = np.searchsorted(anchor_key, key, side="left") - 1
    base = np.where(anchor >= 0, anchor_value[np.maximum(anchor, 0)], 0)
    mask = (1 << bits) - 1
    first = np.ones(len(key), dtype=bool)
    first[1:] = anchor[1:] != anchor[:-1]
    previous_low = np.where(first, base & mask, np.concatenate(([0], low[:-1])))
    step = (low - previous_low) & mask
    total = np.cumsum(step)
    return base + total - _at_segment_start(total - step, anchor)


def _scaled(component: Component | FieldSpec) -> bool:
    return component.scale != 1 or component.offset != 0


def _decode_layout(data: bytes, starts: np.ndarray, d: Definition, spec: MessageSpec | None, has_time: bool):
    """Candidate values per wanted column (in fitparse's field order) and full timestamps, for the
    data messages at `starts` that share definition layout `d`."""
    layout, plan, dev_plan = _layout_plan(d, spec, has_time)
    if layout is None:
        return {}, []
    view = np.ndarray(shape=(len(data) - d.size + 1,), dtype=layout, buffer=data, offset=0, strides=(1,))
    rows = view[starts]

    raw = {}
    for key, _num, _size, base, _profile, _timing in plan:
        raw[key] = _raw(rows[key], base)

    sources: dict[str, list[_Source]] = {}
    times = []
    for key, _num, size, base, profile, timing in plan:
        values, valid = raw[key]
        if timing and values.dtype.kind in "iu":
            times.append((values, valid))
        if profile is None:
            continue
        for component in profile.components:
            expanded = _component(values, valid, base, size, component)
            if expanded is not None:
                sources.setdefault(component.target, []).append(expanded)
        taken = np.zeros(len(starts), dtype=bool)
        for sub, switches in profile.subfields:
            match = np.zeros(len(starts), dtype=bool)
            for ref_num, ref_value in switches:
                for ref_key, n, *_ in plan:  # every field with that number counts, as in fitparse
                    if n == ref_num:
                        ref_values, ref_valid = raw[ref_key]
                        match |= ref_valid & (ref_values == ref_value)
            match &= ~taken
            taken |= match
            if match.any():
                sources.setdefault(sub.name, []).append(_own(values, valid & match, sub))
        if profile.wanted:
            sources.setdefault(profile.spec.name, []).append(_own(values, valid & ~taken, profile.spec))
    for key, name, base, timing in dev_plan:
        values, valid = _raw(rows[key], base)
        if timing and values.dtype.kind in "iu":
            times.append((values, valid))
        if name is not None:
            sources.setdefault(name, []).append(_Source(values, valid))
    return sources, times


def _layout_plan(d: Definition, spec: MessageSpec | None, has_time: bool) -> tuple:
    """(NumPy record type, native field plan, developer field plan) of a definition's layout, made once
    per layout and profile (devices repeat the same few definitions in every file)."""
    key = (d.layout, d.size, has_time, id(spec))
    found = _plans.get(key)
    if found is not None and found[0] is spec:
        return found[1]
    wanted_refs = (
        {num for f in spec.fields.values() for _, switches in f.subfields for num, _ in switches} if spec else set()
    )
    plan, names, formats, offsets = [], [], [], []
    at = 1
    endian = ">" if d.big_endian else "<"
    for i, (num, size, base) in enumerate(d.fields):
        profile = spec.fields.get(num) if spec else None
        timing = has_time and num == TIMESTAMP_FIELD
        if profile is not None or timing or num in wanted_refs:
            form = _format(
                endian, size, base, profile.spec.kind if profile else None, spec, d, num, strict=profile is not None
            )
            if form is not None:
                names.append(f"f{i}")
                formats.append(form)
                offsets.append(at)
                plan.append((f"f{i}", num, size, base, profile, timing))
        at += size
    dev_plan = []
    for i, (num, size, name, base) in enumerate(d.dev_fields):
        column = spec.names.get(name) if spec and name in spec.wanted else None
        timing = has_time and num == TIMESTAMP_FIELD
        if column is not None or timing:
            if column is not None and column.kind != "number":
                raise Unsupported(f"developer field '{name}' in place of the {column.kind} field of {spec.name}")
            form = (
                _format(endian, size, base, "number", spec, d, num, strict=column is not None)
                if base is not None
                else None
            )
            if form is not None:
                names.append(f"d{i}")
                formats.append(form)
                offsets.append(at)
                dev_plan.append((f"d{i}", name if column is not None else None, base, timing))
        at += size
    layout = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": d.size}) if names else None
    if len(_plans) > 4096:  # bounded, as `connectors.fit_scan`'s layouts
        _plans.clear()
    _plans[key] = (spec, (layout, plan, dev_plan))
    return layout, plan, dev_plan


#: (layout, size, timing, profile) → (profile, plans): see `_layout_plan`.
_plans: dict[tuple, tuple] = {}


def _format(endian: str, size: int, base: int, kind: str | None, spec, d: Definition, num: int, strict: bool):
    """The NumPy format of a field, or `Unsupported` (None for a field read only for its timestamp)."""
    known = BASE_TYPES.get(base)
    where = f"field {num} of {spec.name if spec else f'message {d.global_num}'}"

    def refuse(why: str):
        if strict:
            raise Unsupported(f"{where}: {why}")
        return None

    if known is None:
        return refuse(f"unknown base type 0x{base:02X}")
    type_name, numpy_kind, _ = known
    if kind == "string" or base == STRING:
        if kind == "string" and base == STRING:
            return f"S{size}"
        return refuse(f"{type_name} where the profile has {kind}")
    if kind == "bytes" or base == BYTE:
        if kind == "bytes" and base == BYTE:
            return ("u1", (size,))
        return refuse(f"bytes where the profile has {kind}")
    if size != int(numpy_kind[1:]):
        return refuse(f"an array of {size // int(numpy_kind[1:])} {type_name}")
    if numpy_kind[0] == "f" and kind in ("enum", "date_time", "local_date_time"):
        return refuse(f"{type_name} where the profile has {kind}")
    return endian + numpy_kind


def _raw(column: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Values of one field and which are valid (the base type's invalid value → not valid)."""
    if base == STRING:
        text = [b.split(b"\0", 1)[0].decode("utf-8", errors="replace") or None for b in column.tolist()]
        values = np.array(text, dtype=object)
        return values, values != None  # noqa: E711  (element-wise)
    if base == BYTE:
        return column, ~(column == 0xFF).all(axis=1)
    _, kind, invalid = BASE_TYPES[base]
    if kind[0] == "f":
        values = column.astype(np.float64)
        return values, ~np.isnan(values)
    valid = column != invalid
    return column.astype(np.int64), valid


def _own(values: np.ndarray, valid: np.ndarray, spec: FieldSpec) -> _Source:
    """A field's own value under profile `spec`: scaled numbers, raw enum codes and times."""
    if spec.not_a_value:
        valid = valid & ~np.isin(values, list(spec.not_a_value))
    if spec.kind == "number" and _scaled(spec):
        values = values / spec.scale - spec.offset
    return _Source(values, valid)


def _component(values: np.ndarray, valid: np.ndarray, base: int, size: int, component: Component) -> _Source | None:
    """Bits of a field expanded into another field; a byte array is one little-endian number."""
    if base == BYTE:
        if component.bit_offset >= 8 * size:  # fitparse skips components beyond the bytes present
            return None
        if size > 8:
            raise Unsupported(f"a {size}-byte field with components")
        number = np.zeros(len(values), dtype=np.uint64)
        for k in range(size):
            number |= values[:, k].astype(np.uint64) << np.uint64(8 * k)
    else:
        number = values.astype(np.uint64)
    bits = (number >> np.uint64(component.bit_offset)) & np.uint64((1 << component.bits) - 1)
    bits = bits.astype(np.int64)
    if component.accumulate:
        return _Source(bits, valid, component)
    return _Source(bits / component.scale - component.offset if _scaled(component) else bits, valid)


def _coalesce(stacked: list[_Source], n: int) -> tuple[np.ndarray, np.ndarray]:
    """First valid candidate per row, in priority order."""
    if not stacked:
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    if len(stacked) == 1:
        return stacked[0].values, stacked[0].valid
    dtype = np.result_type(*[s.values for s in stacked])
    values = stacked[0].values.astype(dtype, copy=True)
    valid = stacked[0].valid.copy()
    for s in stacked[1:]:
        fill = s.valid & ~valid
        if fill.any():
            values[fill] = s.values[fill]
            valid |= fill
    return values, valid


def _arrow(spec: FieldSpec | None, values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A column as fitparse's rows would make it (see `connectors.fit._to_frame`)."""
    n = len(values)
    if spec is None or not valid.any():
        return pa.nulls(n)
    if spec.kind == "string":
        return pa.array(np.where(valid, values, None).tolist(), type=pa.large_string())
    if spec.kind == "enum":
        named = {c: spec.names.get(c) for c in np.unique(values[valid]).tolist()}
        if all(v is None for v in named.values()):
            return _masked(values.astype(np.int64, copy=False), valid, pa.int64())
        text = [(named[c] or str(c)) if ok else None for c, ok in zip(values.tolist(), valid.tolist())]
        return pa.array(text, type=pa.large_string())
    if spec.kind in ("date_time", "local_date_time"):
        seconds = values.astype(np.int64, copy=False)
        micros = (seconds + FIT_EPOCH_S) * 1_000_000
        if spec.kind == "local_date_time" or (seconds[valid] >= DEVICE_TIME_LIMIT).all():
            return _masked(micros, valid, pa.timestamp("us"))
        # Device-relative times stay numbers in fitparse; its frame then holds the others as µs.
        return _masked(np.where(seconds >= DEVICE_TIME_LIMIT, micros, seconds), valid, pa.int64())
    if values.dtype.kind == "f":
        return _masked(values.astype(np.float64, copy=False), valid, pa.float64())
    return _masked(values.astype(np.int64, copy=False), valid, pa.int64())


def _masked(values: np.ndarray, valid: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    values = np.ascontiguousarray(values)
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(values)])
