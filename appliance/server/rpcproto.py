"""XML-RPC wire format, hardened (pure): defusedxml's expat parser forbids DTDs, entity
declarations and external references (no entity-expansion bombs), the unmarshaller refuses
documents nested deeper than a limit, and answers are plain ``methodResponse`` documents."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

from defusedxml.xmlrpc import DefusedExpatParser

# Fault codes (the first five follow the XML-RPC interoperability convention).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = 1  # no such VM
INVALID_STATE = 2  # e.g. starting a running VM, deleting a running VM
HYPERVISOR_ERROR = 3  # libvirt refused or failed
FORBIDDEN = 4  # ownership rules (owned by another manager, not the owner)
CONFIG_ERROR = 5  # bad certificate or URL handed over

XML_INT_MIN, XML_INT_MAX = -(2**31), 2**31 - 1


class RequestRejected(Exception):
    """The request cannot be parsed or is not allowed; becomes a Fault."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _DepthLimitedUnmarshaller(xmlrpc.client.Unmarshaller):
    def __init__(self, max_depth: int) -> None:
        super().__init__(use_datetime=False, use_builtin_types=True)
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            raise RequestRejected(
                INVALID_REQUEST, f"the request is nested deeper than {self._max_depth} levels"
            )
        super().start(tag, attrs)

    def end(self, tag: str) -> None:
        self._depth -= 1
        super().end(tag)


def parse_request(body: bytes, max_depth: int) -> tuple[str, tuple[Any, ...]]:
    """``methodCall`` document → (method name, params)."""
    target = _DepthLimitedUnmarshaller(max_depth)
    parser = DefusedExpatParser(target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(body)
        parser.close()
        params = target.close()
    except RequestRejected:
        raise
    except Exception as err:  # expat, defusedxml and unmarshaller errors of every kind
        raise RequestRejected(PARSE_ERROR, f"the request is not a valid XML-RPC document: {err}") from err
    method = target.getmethodname()
    if not method:
        raise RequestRejected(INVALID_REQUEST, "the request has no methodName (not a methodCall)")
    return method, tuple(params)


def to_wire(value: Any) -> Any:
    """Make a result marshallable: ints outside XML-RPC's 32 bits become doubles, tuples lists."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if XML_INT_MIN <= value <= XML_INT_MAX else float(value)
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def dump_response(value: Any) -> bytes:
    return xmlrpc.client.dumps((to_wire(value),), methodresponse=True, allow_none=True).encode("utf-8")


def dump_fault(code: int, message: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True).encode("utf-8")
