"""Verb registry and dispatch: arity and type checks from each verb's signature, and the mapping
of errors to XML-RPC Faults with a clear message."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.errors import ApplianceError, ConfigError, UsageError
from appliance.server import rpcproto
from appliance.server.hypervisor import HypervisorError, VmNotFound, VmStateError

log = logging.getLogger(__name__)

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "a struct", list: "an array"}


class ForbiddenError(ApplianceError):
    """The caller may not do this (ownership rules)."""


class NotFoundError(ApplianceError):
    """The object named does not exist on this server."""


class StateError(ApplianceError):
    """The object is not in a state that allows the operation."""


@dataclass(frozen=True)
class Caller:
    """Who made the request: ``password`` (Basic, before ownership) or ``certificate`` (owner)."""

    auth: str
    subject: str
    address: str


def verb(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method ``(self, caller, *params)`` as an XML-RPC verb of the same name."""
    fn.__agent_verb__ = True  # type: ignore[attr-defined]
    return fn


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    required: bool
    default: Any


@dataclass(frozen=True)
class Verb:
    name: str
    func: Callable[..., Any]
    params: tuple[Param, ...]
    doc: str


def _params(func: Callable[..., Any]) -> tuple[Param, ...]:
    sig = inspect.signature(func, eval_str=True)
    out = []
    for p in list(sig.parameters.values())[1:]:  # skip caller
        if p.annotation not in _TYPE_NAMES:
            raise TypeError(f"verb {func.__name__}: parameter {p.name} has unsupported type {p.annotation}")
        required = p.default is inspect.Parameter.empty
        out.append(Param(p.name, p.annotation, required, None if required else p.default))
    return tuple(out)


def collect_verbs(obj: object) -> dict[str, Verb]:
    verbs = {}
    for name, member in inspect.getmembers(obj, callable):
        if getattr(member, "__agent_verb__", False):
            verbs[name] = Verb(name, member, _params(member), inspect.getdoc(member) or "")
    return verbs


def _check(verb_: Verb, params: tuple[Any, ...]) -> None:
    required = sum(p.required for p in verb_.params)
    total = len(verb_.params)
    if not required <= len(params) <= total:
        names = ", ".join(p.name for p in verb_.params) or "no parameters"
        count = str(total) if required == total else f"{required} to {total}"
        raise rpcproto.RequestRejected(
            rpcproto.INVALID_PARAMS,
            f"{verb_.name} takes {count} parameter(s) ({names}), got {len(params)}",
        )
    for p, value in zip(verb_.params, params, strict=False):
        ok = isinstance(value, p.type) and not (p.type is int and isinstance(value, bool))
        if not ok:
            raise rpcproto.RequestRejected(
                rpcproto.INVALID_PARAMS,
                f"{verb_.name}: parameter {p.name} must be {_TYPE_NAMES[p.type]},"
                f" got {type(value).__name__} {_short(value)}",
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fault_code(err: ApplianceError) -> int:
    if isinstance(err, VmNotFound | NotFoundError):
        return rpcproto.NOT_FOUND
    if isinstance(err, VmStateError | StateError):
        return rpcproto.INVALID_STATE
    if isinstance(err, ForbiddenError):
        return rpcproto.FORBIDDEN
    if isinstance(err, ConfigError):
        return rpcproto.CONFIG_ERROR
    if isinstance(err, UsageError):
        return rpcproto.INVALID_PARAMS
    if isinstance(err, HypervisorError):
        return rpcproto.HYPERVISOR_ERROR
    return rpcproto.INTERNAL_ERROR


class Dispatcher:
    def __init__(self, verbs: dict[str, Verb]) -> None:
        self.verbs = verbs

    def handle(self, caller: Caller, body: bytes, max_depth: int) -> bytes:
        """One request document → one response document (a result or a Fault)."""
        try:
            method, params = rpcproto.parse_request(body, max_depth)
            return rpcproto.dump_response(self.call(caller, method, params))
        except rpcproto.RequestRejected as err:
            return rpcproto.dump_fault(err.code, err.message)
        except ApplianceError as err:
            return rpcproto.dump_fault(_fault_code(err), str(err))
        except Exception:
            log.exception("internal error in an XML-RPC call")
            return rpcproto.dump_fault(rpcproto.INTERNAL_ERROR, "internal error in the agent; see its log")

    def call(self, caller: Caller, method: str, params: tuple[Any, ...]) -> Any:
        if method == "system.listMethods":
            return sorted([*self.verbs, "system.listMethods"])
        verb_ = self.verbs.get(method)
        if verb_ is None:
            raise rpcproto.RequestRejected(
                rpcproto.METHOD_NOT_FOUND, f"unknown method {method[:100]!r}; system.listMethods lists them"
            )
        _check(verb_, params)
        return verb_.func(caller, *params)
