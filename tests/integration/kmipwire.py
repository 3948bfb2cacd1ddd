"""A small, independent KMIP TTLV codec and client for the integration tests.

Deliberately separate from kmip/ (the codec under test): the tests build and
read messages with this, so a bug in our codec cannot agree with itself.
Only what the tests need: every TTLV type, a few tag names, request framing.

    msg = request([op(GET, [T(UNIQUE_IDENTIFIER, uid)], batch_id=b"QLKC\\1\\0\\0\\0")])
    with KmipConn(port, ctx) as c:
        resp = c.call(msg)            # a decoded Item
        resp.item(0).status           # Result Status (0 = Success)
"""
import socket
import ssl
import struct

# Types.
STRUCTURE, INTEGER, LONG, BIGINT, ENUM, BOOL, TEXT, BYTES, DATETIME, INTERVAL = range(1, 11)

# Tags (KMIP 1.x, 0x42xxxx).
ATTRIBUTE = 0x420008
ATTRIBUTE_INDEX = 0x420009
ATTRIBUTE_NAME = 0x42000A
ATTRIBUTE_VALUE = 0x42000B
BATCH_COUNT = 0x42000D
BATCH_ITEM = 0x42000F
CRYPTOGRAPHIC_ALGORITHM = 0x420028
CRYPTOGRAPHIC_LENGTH = 0x42002A
CRYPTOGRAPHIC_USAGE_MASK = 0x42002C
KEY_BLOCK = 0x420040
KEY_FORMAT_TYPE = 0x420042
KEY_MATERIAL = 0x420043
KEY_VALUE = 0x420045
MAXIMUM_ITEMS = 0x42004F
NAME = 0x420053
NAME_TYPE = 0x420054
NAME_VALUE = 0x420055
OBJECT_TYPE = 0x420057
OPERATION = 0x42005C
PROTOCOL_VERSION = 0x420069
PROTOCOL_VERSION_MAJOR = 0x42006A
PROTOCOL_VERSION_MINOR = 0x42006B
QUERY_FUNCTION = 0x420074
REQUEST_HEADER = 0x420077
REQUEST_MESSAGE = 0x420078
REQUEST_PAYLOAD = 0x420079
RESPONSE_HEADER = 0x42007A
RESPONSE_MESSAGE = 0x42007B
RESPONSE_PAYLOAD = 0x42007C
RESULT_MESSAGE = 0x42007D
RESULT_REASON = 0x42007E
RESULT_STATUS = 0x42007F
SYMMETRIC_KEY = 0x42008F
TEMPLATE_ATTRIBUTE = 0x420091
TIME_STAMP = 0x420092
UNIQUE_BATCH_ITEM_ID = 0x420093
UNIQUE_IDENTIFIER = 0x420094
VENDOR_IDENTIFICATION = 0x42009D

# Operations.
OP_CREATE, OP_REGISTER, OP_GET, OP_GET_ATTRIBUTES, OP_ADD_ATTRIBUTE = 0x01, 0x03, 0x0A, 0x0B, 0x0D
OP_LOCATE, OP_ACTIVATE, OP_DESTROY, OP_QUERY, OP_DISCOVER_VERSIONS = 0x08, 0x12, 0x14, 0x18, 0x1E

# Result status and reasons.
SUCCESS, OPERATION_FAILED = 0, 1
ITEM_NOT_FOUND, INVALID_MESSAGE, OPERATION_NOT_SUPPORTED, INVALID_FIELD = 0x01, 0x04, 0x05, 0x07
CRYPTOGRAPHIC_FAILURE, GENERAL_FAILURE = 0x0A, 0x100
STATE_PRE_ACTIVE, STATE_ACTIVE = 1, 2


class Item:
    """One decoded TTLV item; value is a list of Items for a Structure."""

    __slots__ = ("tag", "type", "value")

    def __init__(self, tag, typ, value):
        self.tag, self.type, self.value = tag, typ, value

    def all(self, tag):
        return [c for c in self.value if c.tag == tag]

    def get(self, tag):
        for c in self.value:
            if c.tag == tag:
                return c
        return None

    def find(self, *tags):
        """The value at a path of tags (first match at each step), or None."""
        it = self
        for t in tags:
            it = it.get(t) if it is not None and it.type == STRUCTURE else None
        return None if it is None else it.value

    # Response helpers.
    def items(self):
        return [BatchItem(b) for b in self.all(BATCH_ITEM)]

    def item(self, i):
        return self.items()[i]

    def __repr__(self):
        return "Item(%06x, %d, %r)" % (self.tag, self.type, self.value)


class BatchItem:
    def __init__(self, it):
        self.raw = it
        self.status = it.find(RESULT_STATUS)
        self.reason = it.find(RESULT_REASON)
        self.message = it.find(RESULT_MESSAGE)
        self.batch_id = it.find(UNIQUE_BATCH_ITEM_ID)
        self.operation = it.find(OPERATION)
        self.payload = it.get(RESPONSE_PAYLOAD)

    def __repr__(self):
        return "BatchItem(op=%r status=%r reason=%r message=%r)" % (
            self.operation, self.status, self.reason, self.message)


def _pad(b):
    return b + b"\0" * (-len(b) % 8)


def encode(tag, typ, value):
    if typ == STRUCTURE:
        body = b"".join(value)
    elif typ in (INTEGER, ENUM):
        body = struct.pack(">i" if typ == INTEGER else ">I", value)
    elif typ in (LONG, DATETIME):
        body = struct.pack(">q", value)
    elif typ == INTERVAL:
        body = struct.pack(">I", value)
    elif typ == BOOL:
        body = struct.pack(">Q", 1 if value else 0)
    elif typ == TEXT:
        body = value.encode()
    elif typ in (BYTES, BIGINT):
        body = value
    else:
        raise ValueError("type %d" % typ)
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(body)) + _pad(body)


def S(tag, *children):
    return encode(tag, STRUCTURE, children)


def I(tag, v):  # noqa: E743
    return encode(tag, INTEGER, v)


def E(tag, v):
    return encode(tag, ENUM, v)


def T(tag, v):
    return encode(tag, TEXT, v)


def B(tag, v):
    return encode(tag, BYTES, v)


def decode(buf, pos=0, end=None):
    """Decodes the item at buf[pos:]; returns (Item, next position)."""
    end = len(buf) if end is None else end
    if end - pos < 8:
        raise ValueError("truncated header at %d" % pos)
    tag = int.from_bytes(buf[pos:pos + 3], "big")
    typ, length = buf[pos + 3], struct.unpack(">I", buf[pos + 4:pos + 8])[0]
    start = pos + 8
    stop = start + length
    padded = start + length + (-length % 8)
    if padded > end:
        raise ValueError("item %06x overruns its parent" % tag)
    raw = buf[start:stop]
    if typ == STRUCTURE:
        kids, p = [], start
        while p < stop:
            kid, p = decode(buf, p, stop)
            kids.append(kid)
        value = kids
    elif typ == INTEGER:
        value = struct.unpack(">i", raw)[0]
    elif typ in (ENUM, INTERVAL):
        value = struct.unpack(">I", raw)[0]
    elif typ in (LONG, DATETIME):
        value = struct.unpack(">q", raw)[0]
    elif typ == BOOL:
        value = struct.unpack(">Q", raw)[0] != 0
    elif typ == TEXT:
        value = raw.decode()
    else:
        value = bytes(raw)
    return Item(tag, typ, value), padded


def reencode(item):
    """Encodes a decoded Item back to TTLV."""
    if item.type == STRUCTURE:
        return encode(item.tag, STRUCTURE, [reencode(c) for c in item.value])
    return encode(item.tag, item.type, item.value)


def substitute(item, tag, value):
    """A copy of item with every |tag| leaf's value replaced."""
    if item.type == STRUCTURE:
        return Item(item.tag, item.type, [substitute(c, tag, value) for c in item.value])
    return Item(item.tag, item.type, value if item.tag == tag else item.value)


def attribute(name, typ, value, index=None):
    kids = [T(ATTRIBUTE_NAME, name)]
    if index is not None:
        kids.append(I(ATTRIBUTE_INDEX, index))
    kids.append(encode(ATTRIBUTE_VALUE, typ, value))
    return S(ATTRIBUTE, *kids)


def op(operation, payload, batch_id=None):
    """One request batch item: (operation, list of payload items, batch id)."""
    return (operation, payload, batch_id)


def request(items, version=(1, 1)):
    batch = []
    for operation, payload, batch_id in items:
        kids = [E(OPERATION, operation)]
        if batch_id is not None:
            kids.append(B(UNIQUE_BATCH_ITEM_ID, batch_id))
        kids.append(S(REQUEST_PAYLOAD, *payload))
        batch.append(S(BATCH_ITEM, *kids))
    header = S(REQUEST_HEADER,
               S(PROTOCOL_VERSION, I(PROTOCOL_VERSION_MAJOR, version[0]),
                 I(PROTOCOL_VERSION_MINOR, version[1])),
               I(BATCH_COUNT, len(batch)))
    return S(REQUEST_MESSAGE, header, *batch)


def create_aes(length=256, mask=12, name=None):
    attrs = [attribute("Cryptographic Algorithm", ENUM, 3),
             attribute("Cryptographic Usage Mask", INTEGER, mask),
             attribute("Cryptographic Length", INTEGER, length)]
    if name is not None:
        attrs.append(S(ATTRIBUTE, T(ATTRIBUTE_NAME, "Name"),
                       S(ATTRIBUTE_VALUE, T(NAME_VALUE, name), E(NAME_TYPE, 1))))
    return [E(OBJECT_TYPE, 2), S(TEMPLATE_ATTRIBUTE, *attrs)]


def key_bytes(payload):
    """Key Material of a Get response payload holding a Symmetric Key (Raw)."""
    return payload.find(SYMMETRIC_KEY, KEY_BLOCK, KEY_VALUE, KEY_MATERIAL)


def attributes(payload):
    """{name: [values]} of a Get Attributes response payload."""
    out = {}
    for a in payload.all(ATTRIBUTE):
        v = a.get(ATTRIBUTE_VALUE)
        val = v.value if v.type != STRUCTURE else tuple((c.tag, c.value) for c in v.value)
        out.setdefault(a.find(ATTRIBUTE_NAME), []).append(val)
    return out


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def read_frame(sock):
    """One framed TTLV message; b"" if the server closed first."""
    hdr = read_exact(sock, 8)
    if len(hdr) < 8:
        return b""
    return hdr + read_exact(sock, struct.unpack(">I", hdr[4:])[0])


class KmipConn:
    """A TLS connection to keeld: call() sends one message and decodes the
    one response. Used as a context manager, it closes on exit."""

    def __init__(self, port, ctx, timeout=60):
        raw = socket.create_connection(("127.0.0.1", port), timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next response frame decoded, or None if the server closed."""
        data = read_frame(self.sock)
        if not data:
            return None
        msg, end = decode(data)
        if end != len(data) or msg.tag != RESPONSE_MESSAGE:
            raise AssertionError("not one response message: %s" % data.hex())
        return msg

    def call(self, data):
        self.send(data)
        msg = self.recv()
        if msg is None:
            raise AssertionError("server closed instead of answering %s" % data.hex())
        return msg

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
