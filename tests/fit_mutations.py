"""Real FIT files, changed: decoded and written again with the Garmin FIT SDK, each message passed
through a mutation first (the fixtures of tests built on the shared corpus)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from garmin_fit_sdk import Decoder, Encoder, Profile, Stream

#: A mutation: (message number, its fields) → the fields to write (the same dict, changed or not),
#: or None to leave the message out.  Timestamps are FIT seconds (since 1989-12-31 UTC).
Mutation = Callable[[int, dict], dict | None]


def rewrite_fit(
    source: Path,
    target: Path,
    mutate: Mutation = lambda number, fields: fields,
    field_descriptions: dict[int, dict] | None = None,
) -> Path:
    """`source`'s messages, in file order, through `mutate`, written to `target` as one FIT file.

    `field_descriptions` (key → {developer_data_id_mesg, field_description_mesg}, the SDK encoder's
    form) are written after the first message, so a mutation can add `developer_fields` ({key: value})
    to the messages it returns."""
    messages: list[tuple[int, dict]] = []
    decoder = Decoder(Stream.from_file(str(source)))
    _, errors = decoder.read(
        mesg_listener=lambda number, fields: messages.append((number, dict(fields))),
        apply_scale_and_offset=True,
        convert_datetimes_to_dates=False,
        convert_types_to_strings=False,
        expand_sub_fields=False,
        expand_components=False,
        merge_heart_rates=False,
    )
    assert not errors, errors
    encoder = Encoder(field_descriptions)
    described = list((field_descriptions or {}).values())
    for index, (number, fields) in enumerate(messages):
        if number not in Profile["messages"]:  # a manufacturer's own message: the SDK cannot write it
            continue
        kept = mutate(number, {k: v for k, v in fields.items() if isinstance(k, str) and v is not None})
        if kept is not None:
            encoder.on_mesg(number, kept)
        if index == 0:
            developers = {id(d["developer_data_id_mesg"]): d["developer_data_id_mesg"] for d in described}
            for developer in developers.values():
                encoder.on_mesg(Profile["mesg_num"]["DEVELOPER_DATA_ID"], developer)
            for description in described:
                encoder.on_mesg(Profile["mesg_num"]["FIELD_DESCRIPTION"], description["field_description_mesg"])
    target.write_bytes(encoder.close())
    return target
