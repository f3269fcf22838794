"""The object types the shell knows, Oracle VM's names for them, and how each maps onto the WS-API."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.shell.api import CommandError


@dataclass(frozen=True)
class ObjectType:
    name: str  # "Vm": what users type
    path: str  # "/vms": the WS-API collection
    columns: tuple[str, ...]  # what `list` shows in text mode
    verbs: frozenset[str]  # which generic commands apply
    named: bool = True  # has a unique `name` column
    # Extra columns a bare word may match besides id and name (servers: their address).
    also_match: tuple[str, ...] = ()

    @property
    def item(self) -> str:
        return self.path + "/{object_id}"


CRUD = frozenset({"list", "show", "create", "edit", "delete"})
TYPES: dict[str, ObjectType] = {
    t.name.lower(): t
    for t in (
        ObjectType(
            "Server",
            "/servers",
            ("id", "name", "address", "state", "pool_id"),
            CRUD | {"refresh", "releaseServer"},
            also_match=("address",),
        ),
        ObjectType("ServerPool", "/server-pools", ("id", "name", "virtual_ip", "description"), CRUD),
        ObjectType(
            "Vm",
            "/vms",
            ("id", "name", "state", "vcpus", "memory_mib", "server_id"),
            CRUD | {"start", "stop", "kill"},
        ),
        ObjectType("Repository", "/repositories", ("id", "name", "kind", "uri"), CRUD),
        ObjectType("User", "/users", ("id", "name", "role", "description"), CRUD),
        ObjectType(
            "Job",
            "/jobs",
            ("id", "state", "progress", "kind", "summary", "created_by"),
            frozenset({"list", "show", "abort"}),
            named=False,
        ),
        ObjectType(
            "Event",
            "/events",
            ("id", "time", "severity", "type", "acknowledged", "message"),
            frozenset({"list", "show"}),
            named=False,
        ),
        ObjectType(
            "Backup",
            "/backups",
            ("id", "kind", "created_at", "size_bytes"),
            frozenset({"list", "show", "delete"}),
            named=False,
        ),
    )
}

# Attributes that name another object: `server=NAME` stands for `server_id=ID`.
REFERENCES = {
    "server": "server",
    "pool": "serverpool",
    "server_pool": "serverpool",
    "repository": "repository",
}


def types_for(verb: str) -> list[ObjectType]:
    return [t for t in TYPES.values() if verb in t.verbs]


def object_type(verb: str, word: str | None) -> ObjectType:
    choices = ", ".join(t.name for t in types_for(verb))
    if word is None:
        raise CommandError(
            f"`{verb}` needs an object type", f"write `{verb} TYPE ...`, TYPE one of {choices}", usage=True
        )
    found = TYPES.get(word.lower())
    if found is None or verb not in found.verbs:
        what = "an object type" if found is None else f"something `{verb}` works on"
        raise CommandError(
            f"{word!r} is not {what}", f"`{verb}` works on {choices}", code="unknown_type", usage=True
        )
    return found
