"""Invalid UTF-8 in an OTLP logs request, repaired instead of refused (issue 12).

A protobuf parser refuses a whole request when one `string` field holds bytes that are not
UTF-8 (a log line read from a file in Latin-1, a body cut mid-character by a sender). Loki
and the Collector keep such lines; so do we: the request is parsed again with the same
messages in which every `string` field is `bytes` (`_LENIENT`, built once from the OTLP
descriptors), each such field's bytes are decoded with U+FFFD for what is not UTF-8, and the
result is serialized for the usual parser. Only the failure path pays for it.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

_REQUEST = "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest"
_PREFIX = "watchkeeper.lenient."


def _lenient_file(fd: Any, pool: descriptor_pool.DescriptorPool, done: set[str]) -> None:
    """Add `fd` (after its dependencies) to `pool`, its package renamed and strings bytes."""
    if fd.name in done:
        return
    for dep in fd.dependencies:
        _lenient_file(dep, pool, done)
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    proto.name = _PREFIX + proto.name
    proto.package = _PREFIX + proto.package
    proto.dependency[:] = [_PREFIX + d for d in proto.dependency]

    def fix(messages: Any) -> None:
        for m in messages:
            for f in m.field:
                if f.type == FieldDescriptor.TYPE_STRING:
                    f.type = FieldDescriptor.TYPE_BYTES
                if f.type_name.startswith(".opentelemetry."):
                    f.type_name = "." + _PREFIX + f.type_name[1:]
            fix(m.nested_type)

    fix(proto.message_type)
    del proto.service[:]  # the gRPC service is not parsed, and names the old types
    pool.Add(proto)
    done.add(fd.name)


@functools.cache
def _lenient() -> Any:
    """The request's message class with every string field as bytes."""
    pool = descriptor_pool.DescriptorPool()
    _lenient_file(logs_service_pb2.DESCRIPTOR, pool, set())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(_PREFIX + _REQUEST))


def _repair(msg: Any) -> None:
    for f, value in msg.ListFields():
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            items = value if _repeated(f) else [value]
            for item in items:
                _repair(item)
        elif f.type == FieldDescriptor.TYPE_BYTES and f.name not in _RAW_BYTES:
            if _repeated(f):
                value[:] = [v.decode(errors="replace").encode() for v in value]
            else:
                setattr(msg, f.name, value.decode(errors="replace").encode())


def _repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


#: Fields that are bytes in OTLP itself (ids, a bytes value): kept as sent.
_RAW_BYTES = frozenset({"trace_id", "span_id", "bytes_value"})


def repaired_utf8(body: bytes) -> bytes | None:
    """The request with invalid UTF-8 in its strings replaced (U+FFFD), or None when it is
    not a logs request for another reason."""
    request = _lenient()()
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError):
        return None
    _repair(request)
    out: bytes = request.SerializeToString()
    return out
