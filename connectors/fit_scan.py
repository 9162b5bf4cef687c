"""One pass over a FIT file's framing: headers, definition messages and where each data message starts.

Data messages are not decoded here.  The walk only needs each local message type's size, so the
loop over data messages is one table look-up and one append per message (about 60 ns), and a long
run of one header byte (record after record) is found with NumPy a chunk at a time; definitions,
developer-field descriptions, chained headers and CRCs take the slow path.  Damage is reported the
way `connectors.fit` reports it, with the byte offset fitparse would give: for a short read that is
the end of the file; for a bad local message type the byte after its header.

A field whose size is not a multiple of its base type's (a Coros watch writes a uint32 in one byte)
is read as that many uint8, as the FIT SDK's decoder does, and noted; fitparse rejects the file there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from retrostride.connectors.fit import DamageKind
from retrostride.connectors.fit_crc import fit_crc
from retrostride.connectors.fit_profile import BASE_TYPES, STRING, developer_field_nums, message_num

FIT_SIGNATURE = b".FIT"
_DEVELOPER_DATA_ID = message_num("developer_data_id")
_FIELD_DESCRIPTION = message_num("field_description")


class Unsupported(Exception):
    """A construct the columnar decoder leaves to fitparse; the message says which."""


@dataclass(frozen=True)
class Definition:
    """A definition message: the layout of the data messages of one local message type."""

    local: int
    global_num: int
    big_endian: bool
    fields: tuple[tuple[int, int, int], ...]  # (field number, size in bytes, base type)
    dev_fields: tuple[tuple[int, int, str | None, int | None], ...]  # (number, size, described name, base type)
    size: int  # bytes of one data message, its header byte included
    first: int  # index (in `Walk.starts`) of the first data message that may use it

    @property
    def layout(self) -> tuple:
        return (self.global_num, self.big_endian, self.fields, self.dev_fields)


@dataclass
class Walk:
    """What one pass over the framing found."""

    starts: list[int] = field(default_factory=list)  # byte offset of every data message, in file order
    definitions: list[Definition] = field(default_factory=list)
    chain_starts: list[int] = field(default_factory=list)  # index in `starts` where each chained file begins
    damage: tuple[DamageKind, int | None, str] | None = None
    irregular: list[str] = field(default_factory=list)  # definitions read the FIT SDK's way, said once each


def walk(data: bytes) -> Walk:
    """Headers, definitions and data-message offsets of every chained file in `data`, up to any damage."""
    out = Walk()
    n = len(data)
    byte_values = np.frombuffer(data, dtype=np.uint8)
    pos = 0
    descriptions: dict[tuple[int, int], tuple[str | None, int | None]] = {}
    while True:
        first = pos == 0
        header = _header(data, pos, first)
        if isinstance(header[0], str):
            out.damage = header
            return out
        data_start, data_end = header
        chain_start = pos
        out.chain_starts.append(len(out.starts))
        size_of = [0] * 256  # data-message size by header byte; 0: slow path (definition, special or undefined)
        local_defs: dict[int, Definition] = {}
        pos = data_start
        starts = out.starts
        append = starts.append
        while True:
            try:
                repeats, previous = 0, -1
                while pos < data_end:
                    header = data[pos]
                    size = size_of[header]
                    if not size:
                        break
                    append(pos)
                    pos += size
                    if header != previous:
                        repeats, previous = 0, header
                    elif (repeats := repeats + 1) == RUN_AFTER:
                        pos = _run(byte_values, pos, header, size, min(data_end, n), starts)
                        repeats = 0
            except IndexError:  # a header byte past the end of the file
                pass
            if pos > n:  # the last message runs past the end of the file
                cut = starts.pop()
                out.damage = ("eof", n, f"the data message at byte {cut} needs {pos - cut} bytes, {n - cut} are left")
                return out
            if pos >= data_end:
                break
            if pos == n:
                out.damage = ("eof", n, f"the file ends where message {len(starts)} should start")
                return out
            damage = _slow_path(data, pos, size_of, local_defs, descriptions, out)
            if isinstance(damage, tuple):
                out.damage = damage
                return out
            pos = damage
        if pos + 2 > n:
            out.damage = ("eof", n, f"no room for the file CRC at byte {pos}")
            return out
        computed, stored = fit_crc(memoryview(data)[chain_start:pos]), data[pos] | data[pos + 1] << 8
        if computed != stored:
            out.damage = ("crc", pos + 2, f"CRC Mismatch [computed: 0x{computed:04X}, read: 0x{stored:04X}]")
            return out
        pos += 2
        if pos >= n:
            return out


#: Messages of one header byte in a row after which the rest of the run is found with NumPy, and at
#: most how many at a time (a file is mostly long runs of record messages).
RUN_AFTER = 8
RUN_CHUNK = 512


def _run(byte_values: np.ndarray, pos: int, header: int, size: int, end: int, starts: list[int]) -> int:
    """Append the data messages at `pos`, `pos + size`, … up to `end` while their header byte is
    `header` (what the loop in `walk` would append one by one); the position after them."""
    while True:
        heads = byte_values[pos:end:size][:RUN_CHUNK]
        same = heads == header
        count = len(heads) if same.all() else int(same.argmin())
        starts.extend(range(pos, pos + count * size, size))
        pos += count * size
        if count < RUN_CHUNK:
            return pos


def _slow_path(
    data: bytes, pos: int, size_of: list[int], local_defs: dict[int, Definition], descriptions: dict, out: Walk
):
    """Read the definition or special data message at `pos`; the next position, or the damage."""
    n = len(data)
    header = data[pos]
    if header & 0xC0 != 0x40:  # a data message whose local type has no definition, or a special one
        local = (header >> 5) & 0x3 if header & 0x80 else header & 0xF
        definition = local_defs.get(local)
        if definition is None:
            return ("corrupt", pos + 1, f"data message of undefined local message type {local}")
        if pos + definition.size > n:
            return ("eof", n, f"the data message at byte {pos} needs {definition.size} bytes, {n - pos} are left")
        _note_developer_fields(data, pos, definition, descriptions)
        out.starts.append(pos)
        return pos + definition.size
    cut = ("eof", n, f"the definition message at byte {pos} is cut off")
    if pos + 6 > n:
        return cut
    count = data[pos + 5]
    end = pos + 6 + 3 * count
    if header & 0x20:
        if end + 1 > n:
            return cut
        end += 1 + 3 * data[end]
    if end > n:
        return cut
    raw = data[pos:end]
    layout = _layouts.get(raw)
    if layout is None:
        if len(_layouts) > 4096:  # bounded: a worker decodes archives of many devices
            _layouts.clear()
        layout = _layouts[raw] = _layout(raw)
    global_num, big_endian, fields, dev_raw, size, irregular = layout
    for note in irregular:
        if not any(known.startswith(note) for known in out.irregular):
            out.irregular.append(f"{note} (definition at byte {pos}): read as uint8, as the FIT SDK does")
    dev_fields = tuple(
        (num, field_size, *descriptions.get((index, num), (None, None))) for num, field_size, index in dev_raw
    )
    local = header & 0xF
    definition = Definition(local, global_num, big_endian, fields, dev_fields, size, len(out.starts))
    local_defs[local] = definition
    out.definitions.append(definition)
    fast = 0 if global_num in (_DEVELOPER_DATA_ID, _FIELD_DESCRIPTION) else size
    for byte in (local, local | 0x10, local | 0x20, local | 0x30):  # bits 4 and 5 do not change the type
        size_of[byte] = fast
    if local < 4:  # compressed-timestamp headers: 1 tt ooooo
        compressed = 0x80 | local << 5
        size_of[compressed : compressed + 32] = [fast] * 32
    return end


#: Definition bytes → layout; devices repeat the same few definitions (one file has 838 of them).
_layouts: dict[bytes, tuple] = {}


def _layout(raw: bytes) -> tuple:
    """(global number, big endian, fields, developer fields, message size, irregular fields) of a
    definition's bytes.  A field whose size is not a multiple of its base type's becomes uint8s."""
    big_endian = raw[2] != 0
    (global_num,) = struct.unpack_from(">H" if big_endian else "<H", raw, 3)
    fields, irregular = [], []
    size = 1
    for at in range(6, 6 + 3 * raw[5], 3):
        num, field_size, base = raw[at], raw[at + 1], raw[at + 2]
        base_size = BASE_SIZES.get(base, 1)  # an unknown base type is read as bytes, as fitparse does
        if field_size % base_size:
            irregular.append(f"field {num} of message {global_num} is a {field_size}-byte {BASE_TYPES[base][0]}")
            base = UINT8
        fields.append((num, field_size, base))
        size += field_size
    dev_fields = []
    if raw[0] & 0x20:
        count_at = 6 + 3 * raw[5]
        for at in range(count_at + 1, count_at + 1 + 3 * raw[count_at], 3):
            dev_fields.append((raw[at], raw[at + 1], raw[at + 2]))
            size += raw[at + 1]
    return global_num, big_endian, tuple(fields), tuple(dev_fields), size, tuple(irregular)


UINT8 = 0x02
BASE_SIZES = {num: 1 if kind == "S1" else int(kind[1:]) for num, (_, kind, _) in BASE_TYPES.items()}


def _note_developer_fields(data: bytes, pos: int, definition: Definition, descriptions: dict) -> None:
    """Remember developer-field names and types from a developer_data_id or field_description message."""
    values = _raw_values(data, pos, definition)
    data_id, description = developer_field_nums()
    if definition.global_num == _DEVELOPER_DATA_ID:
        index = values.get(data_id["developer_data_index"])
        for key in [k for k in descriptions if k[0] == index]:  # a new developer starts afresh
            del descriptions[key]
        return
    index = values.get(description["developer_data_index"])
    num = values.get(description["field_definition_number"])
    if index is None or num is None:
        return
    name = values.get(description["field_name"])
    descriptions[(index, num)] = (name if isinstance(name, str) else None, values.get(description["fit_base_type_id"]))


def _raw_values(data: bytes, pos: int, definition: Definition) -> dict[int, int | str | None]:
    """The single-valued integer and string fields of one data message, invalid values as None."""
    values: dict[int, int | str | None] = {}
    at = pos + 1
    for num, size, base in definition.fields:
        kind = BASE_TYPES.get(base)
        if kind is not None and base == STRING:
            text = data[at : at + size].split(b"\0", 1)[0]
            values[num] = text.decode("utf-8", errors="replace") or None
        elif kind is not None and kind[1][0] in "iu" and size == BASE_SIZES[base]:
            value = int.from_bytes(
                data[at : at + size], "big" if definition.big_endian else "little", signed=kind[1][0] == "i"
            )
            values[num] = None if value == kind[2] else value
        at += size
    return values


def _header(data: bytes, pos: int, first: bool):
    """(data start, data end) of the chained file whose header is at `pos`, or the damage.

    As with fitparse, damage in the first header has no byte offset (it is found before any
    message), and running out of bytes there means the file is shorter than its header.
    """
    n = len(data)
    where = None if first else pos + 12
    cut = ("short", None, f"{n - pos} bytes") if first else ("eof", n, f"the header at byte {pos} is cut off")
    if n - pos < 12:
        return cut
    if data[pos + 8 : pos + 12] != FIT_SIGNATURE:
        return ("header", where, "Invalid .FIT File Header")
    header_size = data[pos]
    (data_size,) = struct.unpack_from("<I", data, pos + 4)
    extra = header_size - 12
    if extra > 0:
        if extra < 2:
            return ("header", where, "Irregular File Header Size")
        if n - pos < 14:
            return cut
        stored = data[pos + 12] | data[pos + 13] << 8
        computed = fit_crc(memoryview(data)[pos : pos + 12])
        if stored not in (0, computed):  # 0: the writer left the header CRC out
            return (
                "crc",
                None if first else pos + 14,
                f"CRC Mismatch [computed: 0x{computed:04X}, read: 0x{stored:04X}]",
            )
        if n - pos < header_size:
            return cut
    data_start = pos + max(header_size, 12)
    return data_start, data_start + data_size
