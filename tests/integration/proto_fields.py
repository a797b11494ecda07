"""Top-level fields of a serialized protobuf message (a SentencePiece tokenizer.model), read with the standard library
only, for the test scripts that inspect or corrupt one (tiny_hf_model.py, make_malformed_inputs.py)."""


def proto_fields(b):
    """(field number, end offset) of each top-level field of a protobuf message."""
    def varint(i):
        r = s = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i
    i, out = 0, []
    while i < len(b):
        key, i = varint(i)
        wire = key & 7
        if wire == 2:
            n, i = varint(i)
            i += n
        elif wire == 0:
            _, i = varint(i)
        elif wire in (1, 5):
            i += 4 if wire == 5 else 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} at offset {i}")
        out.append((key >> 3, i))
    return out
