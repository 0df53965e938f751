"""quickfix.Message <-> fixspec RawMessage. The only place FIX wire objects change shape."""

from __future__ import annotations

import quickfix as fix

from fixspec.codec import SOH, OutField, RawMessage, flatten


def to_raw(message: fix.Message) -> RawMessage:
    return RawMessage.parse(message.toString())


class OutboundBuilder:
    """Builds outgoing messages from our out-fields with one parse in C++ against the session
    dictionary, which places the repeating groups.

    Setting each field and group through SWIG costs ~2.4x the CPU, and every SWIG call hands the
    GIL to whichever thread wants it: under load the request that is sending waits its turn once
    per field. A value that cannot travel as FIX (SOH inside, which would smuggle fields into the
    message, or empty) is a ValueError naming the tag: the edges refuse such input before it gets
    here.
    """

    def __init__(self, dictionary: fix.DataDictionary) -> None:
        self.dictionary = dictionary

    def __call__(self, msg_type: str, fields: list[OutField]) -> fix.Message:
        parts = [f"35={msg_type}{SOH}"]
        for tag, value in flatten(fields):
            if not value or SOH in value:
                raise ValueError(f"tag {tag} cannot be sent: value {value!r} is empty or holds SOH")
            parts.append(f"{tag}={value}{SOH}")
        # QuickFIX 1.16 drops the entries after a nested group (the second NoSides of an AE) from a
        # text without a trailer; a placeholder CheckSum ends it (recomputed when sent)
        parts.append(f"10=000{SOH}")
        message = fix.Message()
        message.setString("".join(parts), False, self.dictionary)
        return message
