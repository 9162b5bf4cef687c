"""The FIT field profile the columnar decoder needs, read from the Garmin FIT SDK's `Profile`.

Only the message types and fields a caller asks for (normally `FIT_FIELDS`) are described: their
numbers, profile types, scale and offset, enum names, the components that expand into a wanted
field and the subfields that rename one.  Nothing here is typed by hand except the few places where
the reference decoder (fitparse 1.2.0) reads the profile differently; each is named below.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from garmin_fit_sdk import Profile

#: Base types of the FIT protocol: number → (name, NumPy kind and size, invalid value).
#: The invalid value is the one fitparse turns into None (floats: NaN only).
BASE_TYPES: dict[int, tuple[str, str, int | float | None]] = {
    0x00: ("enum", "u1", 0xFF),
    0x01: ("sint8", "i1", 0x7F),
    0x02: ("uint8", "u1", 0xFF),
    0x83: ("sint16", "i2", 0x7FFF),
    0x84: ("uint16", "u2", 0xFFFF),
    0x85: ("sint32", "i4", 0x7FFFFFFF),
    0x86: ("uint32", "u4", 0xFFFFFFFF),
    0x07: ("string", "S1", None),
    0x88: ("float32", "f4", None),
    0x89: ("float64", "f8", None),
    0x0A: ("uint8z", "u1", 0),
    0x8B: ("uint16z", "u2", 0),
    0x8C: ("uint32z", "u4", 0),
    0x0D: ("byte", "u1", None),  # invalid when every byte is 0xFF
    0x8E: ("sint64", "i8", 0x7FFFFFFFFFFFFFFF),
    0x8F: ("uint64", "u8", 0xFFFFFFFFFFFFFFFF),
    0x90: ("uint64z", "u8", 0),
}
STRING, BYTE = 0x07, 0x0D
TIMESTAMP_FIELD = 253  # the common `timestamp` field of every message (Profile['common_fields'])

Kind = Literal["number", "enum", "date_time", "local_date_time", "string", "bytes"]

#: Profile types that are numbers with a few reserved markers, not names: fitparse would turn a
#: marker into a word inside a number column (e.g. message_index 0x0FFF → 'mask').  Kept as numbers.
_NUMERIC_TYPES = {"date_time", "local_date_time", "message_index"}

#: fitparse's older profile types weight_scale.weight as `weight`, whose 0xFFFE means 'calculating';
#: the SDK types it uint16.  Either way it is no weight: null.
_NOT_A_VALUE = {
    ("weight_scale", "weight"): frozenset(v for v, n in Profile["types"]["weight"].items() if n == "calculating")
}


@dataclass(frozen=True)
class Component:
    """Bits of a field that expand into another field of the same message."""

    target: str
    bit_offset: int
    bits: int
    scale: float
    offset: float
    accumulate: bool  # a rolling counter (e.g. compressed distance) that is unwrapped message by message


@dataclass(frozen=True)
class FieldSpec:
    """One profile field (or subfield) as the decoder renders it."""

    name: str
    kind: Kind
    scale: float
    offset: float
    names: dict[int, str] | None  # enum value names
    not_a_value: frozenset[int] = frozenset()

    @property
    def scaled(self) -> bool:
        return self.scale != 1 or self.offset != 0


@dataclass(frozen=True)
class ProfileField:
    """A field number of a message: how it renders, what it expands into, what renames it."""

    num: int
    spec: FieldSpec
    components: tuple[Component, ...]  # only those whose target is wanted
    subfields: tuple[
        tuple[FieldSpec, frozenset[tuple[int, int]]], ...
    ]  # wanted subfields and their (field, raw) switches
    wanted: bool  # its own value is a wanted column


@dataclass(frozen=True)
class MessageSpec:
    num: int
    name: str
    wanted: tuple[str, ...]
    fields: dict[int, ProfileField]
    names: dict[str, FieldSpec]  # every wanted column's rendering, by name


def message_specs(fit_fields: dict[str, tuple[str, ...]]) -> dict[int, MessageSpec]:
    """The wanted message types by global message number."""
    return _message_specs(tuple((name, tuple(fields)) for name, fields in fit_fields.items()))


@cache
def _message_specs(fit_fields: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[int, MessageSpec]:
    by_name = {m["name"]: (num, m) for num, m in Profile["messages"].items()}
    specs = {}
    for name, wanted in fit_fields:
        num, message = by_name[name]
        fields: dict[int, ProfileField] = {}
        names: dict[str, FieldSpec] = {}
        for field_num, field in message["fields"].items():
            own = _spec(name, field, field["type"])
            components = tuple(c for c in _components(message, field) if c.target in wanted)
            subfields = tuple(
                (_spec(name, sub, sub["type"]), frozenset((m["num"], m["raw_value"]) for m in sub["map"]))
                for sub in field["sub_fields"]
                if sub["name"] in wanted
            )
            if own.name in wanted or components or subfields:
                fields[field_num] = ProfileField(field_num, own, components, subfields, own.name in wanted)
            if own.name in wanted:
                names[own.name] = own
            for sub, _ in subfields:
                names[sub.name] = sub
        for column in wanted:
            if column not in names:  # a component-only target still needs its own rendering
                target = next((f for f in message["fields"].values() if f["name"] == column), None)
                if target is not None:
                    names[column] = _spec(name, target, target["type"])
                else:  # not in the profile: only a developer field can carry it, as a plain number
                    names[column] = FieldSpec(column, "number", 1.0, 0.0, None)
        specs[num] = MessageSpec(num, name, wanted, fields, names)
    return specs


def _spec(message: str, field: dict, type_name: str) -> FieldSpec:
    # With several components the scale list describes the components; the field itself is unscaled.
    scale = field["scale"][0] if len(field["scale"]) == 1 else 1
    offset = field["offset"][0] if len(field["offset"]) == 1 else 0
    types = Profile["types"]
    if type_name in ("date_time", "local_date_time"):
        kind: Kind = type_name
    elif type_name == "string":
        kind = "string"
    elif type_name == "byte":
        kind = "bytes"
    elif type_name in types and type_name not in _NUMERIC_TYPES:
        kind = "enum"
    else:
        kind = "number"
    names = {int(k): v for k, v in types[type_name].items()} if kind == "enum" else None
    return FieldSpec(field["name"], kind, scale, offset, names, _NOT_A_VALUE.get((message, field["name"]), frozenset()))


def _components(message: dict, field: dict) -> list[Component]:
    out, bit_offset = [], 0
    for i, target_num in enumerate(field["components"]):
        target = message["fields"][target_num]
        bits = field["bits"][i]
        out.append(
            Component(
                target["name"], bit_offset, bits, field["scale"][i], field["offset"][i], bool(target["is_accumulated"])
            )
        )
        bit_offset += bits
    return out


@cache
def developer_field_nums() -> tuple[dict[str, int], dict[str, int]]:
    """Field numbers of `developer_data_id` and `field_description`, the messages that name developer fields."""
    by_name = {m["name"]: m for m in Profile["messages"].values()}
    data_id = {f["name"]: n for n, f in by_name["developer_data_id"]["fields"].items()}
    description = {f["name"]: n for n, f in by_name["field_description"]["fields"].items()}
    return data_id, description


@cache
def message_num(name: str) -> int:
    return next(num for num, m in Profile["messages"].items() if m["name"] == name)
