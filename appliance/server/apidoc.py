"""Renders docs/agent-api.md from the verbs' signatures and docstrings:
``python -m appliance.server.apidoc > docs/agent-api.md`` (a test checks the file is current)."""

from __future__ import annotations

import inspect

from appliance.server import rpcproto
from appliance.server.dispatch import Verb, collect_verbs
from appliance.server.verbs import AgentVerbs

_XMLRPC_TYPES = {str: "string", int: "int", bool: "boolean", dict: "struct", list: "array"}

HEADER = """# Server agent XML-RPC API

Generated from the code by `python -m appliance.server.apidoc`; do not edit by hand.

Endpoint: `https://SERVER:8899/` (also `/RPC2`), XML-RPC over HTTPS, HTTP/1.1 keep-alive.
Before a manager owns the server, calls authenticate with HTTP Basic, user `oracle` and the
agent password. After `take_ownership`, only TLS client certificates issued by the owning
manager's CA with CN = the manager UUID are accepted (others are refused at the TLS handshake or
get HTTP 403). Requests are limited in size (HTTP 413) and nesting depth; DTDs and entities are
refused. `system.listMethods` lists the verbs.

Errors are XML-RPC Faults with a message saying what was wrong (and usually a `hint:` line):
"""

FAULTS = [
    (rpcproto.PARSE_ERROR, "the body is not a well-formed, entity-free XML-RPC document"),
    (rpcproto.INVALID_REQUEST, "not a methodCall, or nested too deep"),
    (rpcproto.METHOD_NOT_FOUND, "unknown verb"),
    (rpcproto.INVALID_PARAMS, "wrong number or type of parameters, or a bad value (VM spec field, interval)"),
    (rpcproto.INTERNAL_ERROR, "a bug in the agent (see its log)"),
    (rpcproto.NOT_FOUND, "no such VM"),
    (rpcproto.INVALID_STATE, "the VM (or ownership) is not in a state that allows the call"),
    (rpcproto.HYPERVISOR_ERROR, "libvirt refused or failed the operation"),
    (rpcproto.FORBIDDEN, "ownership rules: owned by another manager, or not the owner"),
    (rpcproto.CONFIG_ERROR, "a certificate or URL handed over at take_ownership is not usable"),
]

VM_SPEC = """## VM spec (create_vm)

| field | type | default | meaning |
|---|---|---|---|
| `name` | string | required | 1-63 of `A-Za-z0-9_.-`, starting alphanumeric; unique on the server |
| `uuid` | string | generated | the VM's identity everywhere (manager, pool, libvirt) |
| `vcpus` | int | 1 | 1-128 |
| `memory_mib` | int | required | 16 MiB - 4 TiB |
| `virt_type` | string | hypervisor default | `hvm` (QEMU; Xen HVM), `pv` or `pvh` (Xen); Xen default `pvh` |
| `boot` | string or struct | `"disk"` | `"disk"`, or `{kernel, initrd, cmdline}` with absolute paths |
| `disks` | array | [] | `{path, format: raw/qcow2, device: disk/cdrom, readonly, shareable}` |
| `nics` | array | [] | `{mac (generated 02:..), bridge / network / user (QEMU only), model: virtio/e1000/rtl8139}` |
| `console_log` | string | "" | absolute file receiving the serial console (QEMU); "" = pty |
| `on_crash` | string | destroy | destroy, restart or preserve |
| `ha` | boolean | false | restart on another pool server when this one dies (server pools) |
| `description` | string | "" | free text (max 1024) |

Unknown fields are refused. Disk files are never created or deleted by the agent.

## Metrics (get_statistics, and the statistics push)

Server: `cpu_percent`, `memory_used_bytes`, `memory_total_bytes`, `disk_read_bytes`,
`disk_write_bytes`, `net_rx_bytes`, `net_tx_bytes`. VM: `cpu_percent` (of its vCPUs),
`memory_bytes`, `vcpus`, `disk_read_bytes`, `disk_write_bytes`, `net_rx_bytes`, `net_tx_bytes`.
Byte counters are cumulative (since host boot or VM start); the manager derives rates.
Integers beyond 32 bits are sent as doubles.
"""


def _signature(v: Verb) -> str:
    params = ", ".join(
        f"{p.name}: {_XMLRPC_TYPES[p.type]}" + ("" if p.required else f" = {p.default!r}") for p in v.params
    )
    return f"{v.name}({params})"


def render() -> str:
    verbs = collect_verbs(AgentVerbs(agent=None))  # type: ignore[arg-type]
    out = [HEADER, "| code | meaning |", "|---|---|"]
    out += [f"| {code} | {text} |" for code, text in FAULTS]
    out.append("\n## Verbs\n")
    for name in sorted(verbs):
        v = verbs[name]
        out.append(f"### `{_signature(v)}`\n")
        out.append(inspect.cleandoc(v.doc) + "\n")
    out.append(VM_SPEC)
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
