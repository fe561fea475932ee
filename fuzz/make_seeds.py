#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/seeds/), which is also the
malformed-input corpus that rtmp/tests/corpus.rs runs on every test run:
valid phone sessions to start from, and the malformed cases they must survive."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def s(v):
    b = v.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def n(v):
    return b"\x00" + struct.pack(">d", v)


NULL = b"\x05"


def obj(pairs):
    out = b"\x03"
    for k, v in pairs:
        out += struct.pack(">H", len(k)) + k.encode() + v
    return out + b"\x00\x00\x09"


def amf3_string(v):
    b = v.encode()
    return b"\x11\x06" + bytes([(len(b) << 1) | 1]) + b


def message(csid, type_id, stream, payload, ts=0, chunk=128):
    out = bytes([csid]) + struct.pack(">I", ts)[1:] + struct.pack(">I", len(payload))[1:]
    out += bytes([type_id]) + struct.pack("<I", stream)
    first, rest = payload[:chunk], payload[chunk:]
    out += first
    while rest:
        out += bytes([0xC0 | csid]) + rest[:chunk]
        rest = rest[chunk:]
    return out


def call(name, txn, *args, stream=0, amf3=False, chunk=128):
    if amf3:
        body = b"\x00" + s(name) + n(txn) + b"\x11\x01" + b"".join(args)
        return message(3, 17, stream, body, chunk=chunk)
    return message(3, 20, stream, s(name) + n(txn) + NULL + b"".join(args), chunk=chunk)


def write(target, name, data):
    with open(os.path.join(HERE, "seeds", target, name), "wb") as f:
        f.write(data)


publish = call("createStream", 2) + call("publish", 0, s("mic"), s("live"), stream=1)
audio = b"".join(message(4, 8, 1, b"\xb2" + bytes(70), ts=20 * i) for i in range(5))
seeds = {
    "phone_amf0": call("register", 2) + call("dial", 3, s("sip:bob@127.0.0.1"))
    + call("sendDTMF", 4, s("12#")) + call("reject", 5, n(486)) + call("hangup", 6),
    "phone_lines": call("dial", 2, s("sip:bob@127.0.0.1")) + call("hold", 3) + call("unhold", 4, n(1))
    + call("transfer", 5, s("sip:carol@127.0.0.1")) + call("transfer", 6, n(1), s("sip:carol@127.0.0.1"))
    + call("transfer", 7, n(0.5)) + call("join", 8, n(1), n(2)) + call("join", 9, s("x"))
    + call("three_way", 10, NULL, n(2)) + call("three_way", 11, n(1), n(2), n(3)) + call("hangup", 12, n(2)),
    "phone_amf3": call("register", 2, amf3=True) + call("dial", 3, amf3_string("sip:a@b"), amf3=True),
    "publish_audio": publish + audio,
    "play": call("createStream", 2) + call("play", 0, s("spk"), stream=1)
    + call("receiveAudio", 0, b"\x01\x00", stream=1) + call("deleteStream", 0, n(1)),
    "chunk_size_then_big": message(2, 1, 0, struct.pack(">I", 4096))
    + call("dial", 2, s("sip:" + "x" * 3000), chunk=4096),
    "ping_and_ack": message(2, 5, 0, struct.pack(">I", 100)) + message(2, 4, 0, b"\x00\x06\x00\x00\x00\x01")
    + message(2, 3, 0, struct.pack(">I", 5)),
    "bad_chunk_size": message(2, 1, 0, struct.pack(">I", 0x7FFFFFFF)),
    "zero_chunk_size": message(2, 1, 0, struct.pack(">I", 0)),
    "oversized_message": bytes([3, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0]),
    "unknown_type": message(3, 7, 0, b"\x01\x02"),
    "compressed_first": b"\xc9\x01\x02\x03",
    "truncated_amf": message(3, 20, 0, b"\x02\x00\x10a"),
    "reserved_marker": message(3, 20, 0, b"\x04"),
    "bad_format_byte": message(3, 17, 0, b"\x07\x05"),
    "no_command_name": message(3, 20, 0, n(5) + s("dial")),
    "bad_utf8": message(3, 20, 0, b"\x02\x00\x02\xc3\x28"),
    "publish_unknown_stream": call("publish", 0, s("mic"), stream=7),
    "interrupted_message": bytes([3, 0, 0, 0, 0, 1, 0, 20, 0, 0, 0, 0]) + bytes(128)
    + bytes([3, 0, 0, 0, 0, 0, 1, 20, 0, 0, 0, 0, 5]),
    "abort": bytes([5, 0, 0, 0, 0, 1, 0, 20, 0, 0, 0, 0]) + bytes(128) + message(2, 2, 0, struct.pack(">I", 5))
    + call("register", 2),
    "deep_nesting": message(3, 20, 0, s("dial") + n(2) + NULL + b"\x0a\x00\x00\x00\x01" * 200),
    "reference_bomb": message(3, 20, 0, s("dial") + n(2) + NULL + b"\x0a\x00\x00\x00\x01\x05"
    + b"".join(b"\x0a\x00\x00\x00\x02\x07" + struct.pack(">H", i) + b"\x07" + struct.pack(">H", i) for i in range(30))),
}
for name, data in seeds.items():
    # First byte: how the session's input is split into reads (see fuzzing.rs).
    write("rtmp_session", name, bytes([len(name) % 64]) + data)

# Foreign client APIs: the first byte's top bits pick mod_rtmp (1) or siprtmp (2).
foreign = {
    "mod_rtmp_phone": (1, call("login", 2, s("alice@example.com"), s("0" * 32)) + call("makeCall", 3, s("1000"), s("alice@example.com"), obj([("wantVideo", b"\x01\x00")]))
    + call("attach", 4) + call("attach", 5, s("1")) + call("answer", 6, s("2")) + call("hangup", 7, s("2"), s("USER_BUSY"))
    + call("transfer", 8, s("1"), s("2000")) + call("three_way", 9, s("1"), s("2")) + call("join", 10, s("1"), s("2"))
    + call("sendDTMF", 11, s("1"), n(250)) + call("register", 12, s("alice@example.com"), s("desk")) + call("unregister", 13)
    + call("sendevent", 14, obj([("a", s("b"))])) + call("log", 15, s("hello")) + call("logout", 16) + call("login", 17)),
    "siprtmp_phone": (2, call("invite", 2, s("bob@example.com"), s("speex")) + call("accept", 3, s("speex")) + call("reject", 4, s("486"))
    + call("sendDTMF", 5, s("5")) + call("sendDTMF", 6, n(7)) + call("hold", 7, b"\x01\x01") + call("hold", 8, b"\x01\x00")
    + call("bye", 9) + call("invite", 10)),
}
for name, (api, data) in foreign.items():
    write("rtmp_session", name, bytes([(api << 6) | (len(name) % 64)]) + data)

amf = {
    "connect_object": s("connect") + n(1) + obj([("app", s("phone")), ("objectEncoding", n(3))]),
    "amf3_args": amf3_string("sip:bob@127.0.0.1") + b"\x11\x04\x7f" + b"\x11\x0a\x0b\x01\x03a\x06\x03b\x01",
    "ecma_and_strict": b"\x08\x00\x00\x00\x01\x00\x01k\x00" + struct.pack(">d", 2) + b"\x00\x00\x09"
    + b"\x0a\x00\x00\x00\x02\x05\x06",
    "date_xml_long": b"\x0b" + struct.pack(">d", 1e12) + b"\x00\x00" + b"\x0f\x00\x00\x00\x04<a/>"
    + b"\x0c\x00\x00\x00\x03abc",
    "truncated": b"\x00\x01\x02",
    "bad_reference": b"\x07\x00\x05",
    "missing_end": b"\x03\x00\x01a\x05",
    "amf3_externalizable": b"\x11\x0a\x07\x03X",
    "amf3_bad_string_ref": b"\x11\x06\x00",
}
for name, data in amf.items():
    write("amf", name, data)
print(f"{len(seeds) + len(foreign)} session seeds, {len(amf)} AMF seeds")
