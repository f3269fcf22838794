"""The shell's commands: Oracle VM's verbs and type names, each carried out through the WS-API.

A handler gets the session and the command's words, consumes what it understands and refuses the
rest, so a misspelt attribute never reaches the API. Calls that make jobs wait for them unless
``wait=false`` (or ``set wait=false``).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from appliance.shell import output
from appliance.shell.api import CommandError
from appliance.shell.schema import Field, coerce, parse_bool
from appliance.shell.session import Outcome, Session, segment
from appliance.shell.types import REFERENCES, TYPES, ObjectType, object_type
from appliance.shell.words import Words

DEFAULT_LIST_LIMIT = 50  # jobs and events: the newest ones
PAGE = 1000

# Endpoints of the trust/orchestration contract (docs/cli.md lists them); the live manager may lack some.
REFRESH_ALL = "/servers/refresh-all"


class Args:
    """The words of one command being consumed; leftovers are refused with the accepted names."""

    def __init__(self, command: str, words: Words) -> None:
        self.command = command
        self.positional = list(words.positional)
        self.attrs = list(words.attrs)

    def word(self) -> str | None:
        return self.positional.pop(0) if self.positional else None

    def take(self, key: str) -> str | None:
        for i, (k, v) in enumerate(self.attrs):
            if k == key:
                del self.attrs[i]
                return v
        return None

    def need(self, key: str, what: str) -> str:
        value = self.take(key)
        if value is None or value == "":
            raise CommandError(
                f"`{self.command}` needs {key}=", f"give {key}={what}", code="missing_attribute", usage=True
            )
        return value

    def finish(self, allowed: Iterable[str]) -> None:
        allowed = sorted(set(allowed))
        if self.positional:
            raise CommandError(
                f"`{self.command}` does not take {' '.join(self.positional)!r}",
                "write attributes as NAME=VALUE" + (f"; it takes {', '.join(allowed)}" if allowed else ""),
                code="bad_argument",
                usage=True,
            )
        if self.attrs:
            unknown = ", ".join(dict.fromkeys(k for k, _ in self.attrs))
            raise CommandError(
                f"`{self.command}` does not know the attribute(s) {unknown}",
                f"it takes: {', '.join(allowed)}" if allowed else "it takes no attributes",
                code="unknown_attribute",
                usage=True,
            )


def whole_number(name: str, text: str, *, minimum: int = 0) -> int:
    value = coerce(Field(name, "integer"), text)
    if value < minimum:
        raise CommandError(f"{name}={text} is below {minimum}", f"give {name}>={minimum}", usage=True)
    return int(value)


def duration_seconds(name: str, text: str) -> int:
    """``3600``, ``90s``, ``30m``, ``24h`` or ``7d`` in seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise CommandError(
            f"{name}={text!r} is not a duration", "write seconds or N followed by s, m, h or d", usage=True
        )
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# --- pieces shared by several commands ---


def selector_keys(t: ObjectType) -> tuple[str, ...]:
    return ("id", "name", *t.also_match) if t.named else ("id",)


def select(s: Session, t: ObjectType, a: Args) -> dict[str, Any]:
    """The object the command names: a bare word, or the first id=/name= (servers: address=) given."""
    word = a.word()
    if word is not None:
        return s.resolve(t, None, word)
    for i, (key, value) in enumerate(a.attrs):
        if key in selector_keys(t):
            del a.attrs[i]
            return s.resolve(t, key, value)
    keys = " or ".join(f"{k}=" for k in selector_keys(t))
    raise CommandError(
        f"`{a.command} {t.name}` needs to know which {t.name}", f"give {keys}", code="no_selector", usage=True
    )


def reference_fields(fields: dict[str, Field]) -> dict[str, str]:
    """Aliases that name another object, for the *_id fields this body has: {"server": "server_id"}."""
    out = {}
    for alias, type_key in REFERENCES.items():
        column = "pool_id" if type_key == "serverpool" else f"{alias}_id"
        if column in fields:
            out[alias] = column
    return out


def body_from(s: Session, a: Args, method: str, path: str) -> dict[str, Any]:
    """The JSON body for ``method path`` from the remaining attributes, checked against the live schema."""
    fields = s.schema.body_fields(method, path) or {}
    refs = reference_fields(fields)
    body: dict[str, Any] = {}
    unknown = []
    for key, value in a.attrs:
        column = refs.get(key, key)
        if column in body:
            raise CommandError(f"{key} is given twice", "give each attribute once", usage=True)
        if key in refs:
            target = TYPES[REFERENCES[key]]
            body[column] = None if value == "" else s.resolve(target, None, value)["id"]
        elif key in fields:
            body[key] = coerce(fields[key], value)
        else:
            unknown.append(key)
    a.attrs.clear()
    if unknown:
        allowed = sorted(set(fields) | set(refs))
        raise CommandError(
            f"`{a.command}` does not know the attribute(s) {', '.join(unknown)}",
            f"it takes: {', '.join(allowed)}",
            code="unknown_attribute",
            usage=True,
        )
    missing = [f.name for f in fields.values() if f.required and f.name not in body]
    if missing:
        raise CommandError(
            f"`{a.command}` needs {', '.join(missing)}",
            "give " + ", ".join(fields[m].describe() for m in missing),
            code="missing_attribute",
            usage=True,
        )
    return body


def list_outcome(t: ObjectType, items: list[dict[str, Any]], total: int, **more: Any) -> Outcome:
    text = output.table(items, t.columns) if items else f"no {t.name} objects"
    if total > len(items):
        text += f"\n({len(items)} of {total} shown)"
    return Outcome(data={"items": items, "total": total, **more}, text=text)


def filters_from(s: Session, t: ObjectType, a: Args, skip: tuple[str, ...]) -> dict[str, Any]:
    fields = {k: f for k, f in s.schema.query_fields("GET", t.path).items() if k not in skip}
    params = {}
    for key, value in list(a.attrs):
        if key in fields:
            params[key] = coerce(fields[key], value)
            a.take(key)
    a.finish([*fields, "limit"])
    return params


# --- the commands ---


def do_list(s: Session, a: Args) -> Outcome:
    t = object_type("list", a.word())
    limit_text = a.take("limit")
    limit = whole_number("limit", limit_text, minimum=1) if limit_text else None
    if t.name == "Backup":
        a.finish(["limit"])
        backups = s.api.get("/backups")["items"]
        return list_outcome(t, backups[:limit] if limit else backups, len(backups))
    if t.name == "Job":
        params = filters_from(s, t, a, ("limit", "offset"))
        body = s.api.get("/jobs", limit=min(limit or DEFAULT_LIST_LIMIT, PAGE), **params)
        return list_outcome(t, body["items"], body["total"])
    if t.name == "Event":
        since_text = a.take("since")
        params = filters_from(s, t, a, ("limit", "since"))
        if since_text is not None:
            since = whole_number("since", since_text)
            body = s.api.get("/events", since=since, limit=min(limit or PAGE, PAGE), **params)
            return list_outcome(t, body["items"], body["total"], next_since=body["next_since"])
        # The newest events: follow the cursor to the end, keeping the last `limit`.
        newest: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit or DEFAULT_LIST_LIMIT)
        cursor, total = 0, 0
        while True:
            body = s.api.get("/events", since=cursor, limit=PAGE, **params)
            newest.extend(body["items"])
            total = max(total, body["total"])
            if len(body["items"]) < PAGE:
                break
            cursor = body["next_since"]
        return list_outcome(t, list(newest), total, next_since=newest[-1]["id"] if newest else cursor)
    params = filters_from(s, t, a, ("limit", "offset"))
    items: list[dict[str, Any]] = []
    total = 0
    while limit is None or len(items) < limit:
        size = PAGE if limit is None else min(PAGE, limit - len(items))
        body = s.api.get(t.path, limit=size, offset=len(items), **params)
        items.extend(body["items"])
        total = body["total"]
        if not body["items"] or len(items) >= total:
            break
    return list_outcome(t, items, total)


def do_show(s: Session, a: Args) -> Outcome:
    t = object_type("show", a.word())
    obj = select(s, t, a)
    a.finish(selector_keys(t))
    return Outcome(data=obj, text=output.record(obj))


def do_create(s: Session, a: Args) -> Outcome:
    t = object_type("create", a.word())
    if a.positional:
        a.finish([])
    return s.submit("POST", t.path, body_from(s, a, "POST", t.path))


def do_edit(s: Session, a: Args) -> Outcome:
    t = object_type("edit", a.word())
    obj = select(s, t, a)
    if a.positional:
        a.finish([])
    body = body_from(s, a, "PATCH", t.item)
    if not body:
        raise CommandError(
            f"`edit {t.name}` needs something to change",
            f"give NAME=VALUE; `help edit {t.name}` lists them",
            code="missing_attribute",
            usage=True,
        )
    return s.submit("PATCH", f"{t.path}/{segment(str(obj['id']))}", body)


def do_delete(s: Session, a: Args) -> Outcome:
    t = object_type("delete", a.word())
    obj = select(s, t, a)
    a.finish(selector_keys(t))
    return s.submit("DELETE", f"{t.path}/{segment(str(obj['id']))}")


def vm_action(action: str, body: dict[str, Any] | None) -> Callable[[Session, Args], Outcome]:
    def run(s: Session, a: Args) -> Outcome:
        t = object_type(a.command, a.word())
        server = a.take("server") if action == "start" else None
        obj = select(s, t, a)
        a.finish([*selector_keys(t), *(["server"] if action == "start" else [])])
        payload = body
        if server:
            payload = {"server_id": s.resolve(TYPES["server"], None, server)["id"]}
        return s.submit("POST", f"/vms/{segment(str(obj['id']))}/{action}", payload)

    return run


def do_discover(s: Session, a: Args) -> Outcome:
    body: dict[str, Any] = {
        "address": a.need("ip_address", "ADDRESS"),
        "agent_password": a.need("password", "AGENT_PASSWORD"),
    }
    name = a.take("name")
    port = a.take("agent_port")
    a.finish(["ipAddress", "password", "name", "agentPort"])
    if name:
        body["name"] = name
    if port is not None:
        body["agent_port"] = whole_number("agentPort", port, minimum=1)
    return s.submit("POST", "/servers", body)


def do_release(s: Session, a: Args) -> Outcome:
    t = TYPES["server"]
    if a.positional and a.positional[0].lower() == "server":
        a.word()
    force = a.take("force")
    obj = select(s, t, a)
    a.finish([*selector_keys(t), "force"])
    body = {"force": parse_bool("force", force)} if force is not None else None
    return s.submit("POST", f"/servers/{segment(str(obj['id']))}/release", body)


def do_refresh(s: Session, a: Args) -> Outcome:
    t = object_type("refresh", a.word())
    obj = select(s, t, a)
    a.finish(selector_keys(t))
    return s.submit("POST", f"{t.path}/{segment(str(obj['id']))}/refresh")


def do_refresh_all(s: Session, a: Args) -> Outcome:
    a.finish([])
    return s.submit("POST", REFRESH_ALL)


def do_abort(s: Session, a: Args) -> Outcome:
    t = object_type("abort", a.word())
    job = select(s, t, a)
    a.finish(["id"])
    job = s.api.request("POST", f"/jobs/{job['id']}/abort")
    return Outcome(data=job, text=f"abort requested for job {job['id']} ({job['state']}): {job['summary']}")


def do_ack(s: Session, a: Args) -> Outcome:
    event = select(s, TYPES["event"], a)
    a.finish(["id"])
    return s.submit("POST", f"/events/{event['id']}/acknowledge")


def do_backup(s: Session, a: Args) -> Outcome:
    a.finish([])
    return s.submit("POST", "/backups")


def do_get_backup_config(s: Session, a: Args) -> Outcome:
    a.finish([])
    config = s.api.get("/backups/config")
    return Outcome(data=config, text=output.record(config))


def do_set_backup_config(s: Session, a: Args) -> Outcome:
    interval = a.take("interval") or a.take("interval_minutes")
    keep = a.take("keep")
    a.finish(["interval", "keep"])
    if interval is None and keep is None:
        raise CommandError(
            "`setDbBackupConfig` needs interval= or keep=",
            "give interval=MINUTES and/or keep=COUNT",
            code="missing_attribute",
            usage=True,
        )
    config = dict(s.api.get("/backups/config"))  # PUT takes the whole schedule: keep what is not given
    if interval is not None:
        config["interval_minutes"] = whole_number("interval", interval)
    if keep is not None:
        config["keep"] = whole_number("keep", keep)
    return s.submit("PUT", "/backups/config", config)


def do_enrollment_token(s: Session, a: Args) -> Outcome:
    body: dict[str, Any] = {}
    ttl = a.take("ttl")
    uses = a.take("uses")
    a.finish(["ttl", "uses"])
    if ttl is not None:
        body["ttl_seconds"] = duration_seconds("ttl", ttl)
    if uses is not None:
        body["uses"] = whole_number("uses", uses, minimum=1)
    return s.submit("POST", "/enrollment-tokens", body)


def do_ca_fingerprint(s: Session, a: Args) -> Outcome:
    a.finish([])
    ca = s.api.get("/ca")
    return Outcome(data={"fingerprint_sha256": ca["fingerprint_sha256"]}, text=ca["fingerprint_sha256"])


def do_set(s: Session, a: Args) -> Outcome:
    mode = a.take("output_mode")
    wait = a.take("wait")
    a.finish(["outputMode", "wait"])
    if mode is not None:
        if mode.lower() not in ("text", "json"):
            raise CommandError(f"outputMode={mode!r} is not text or json", "set outputMode=json", usage=True)
        s.settings.output_mode = mode.lower()
    if wait is not None:
        s.settings.wait = parse_bool("wait", wait)
    shown = {"outputMode": s.settings.output_mode, "wait": s.settings.wait}
    return Outcome(data=shown, text=output.record(shown))


def _key_owner(s: Session, a: Args) -> tuple[str, str]:
    """(name, id) of the user whose keys a command manages: you, or with user= (admins) anyone."""
    me = s.api.request("GET", "/me")
    user = a.take("user") or me["name"]
    if user == me["name"]:
        return user, str(me["id"])
    if s.api.role != "admin":
        raise CommandError(f"only admins may manage {user}'s keys", "leave out user=", code="forbidden")
    found = s.api.request("GET", "/users", params={"name": user})["items"]
    if not found:
        raise CommandError(f"there is no user {user!r}", "list Users shows them", code="not_found")
    return user, str(found[0]["id"])


def _key_row(item: dict[str, Any]) -> dict[str, str]:
    key_type = str(item["public_key"]).split(" ", 1)[0]
    return {
        "fingerprint": item["fingerprint"],
        "type": key_type,
        "comment": item["comment"],
        "id": item["id"],
    }


def do_add_key(s: Session, a: Args) -> Outcome:
    key_line = a.need("key", '"ssh-ed25519 AAAA... comment"')
    user, user_id = _key_owner(s, a)
    a.finish(["key", "user"])
    added = _key_row(s.api.request("POST", f"/users/{user_id}/ssh-keys", json={"public_key": key_line}))
    return Outcome(data=added, text=f"key {added['fingerprint']} added for {user}")


def do_list_keys(s: Session, a: Args) -> Outcome:
    user, user_id = _key_owner(s, a)
    a.finish(["user"])
    items = [_key_row(i) for i in s.api.request("GET", f"/users/{user_id}/ssh-keys")["items"]]
    text = output.table(items, ("fingerprint", "type", "comment")) if items else f"{user} has no SSH keys"
    return Outcome(data={"items": items, "total": len(items)}, text=text)


def do_delete_key(s: Session, a: Args) -> Outcome:
    fingerprint = a.need("fingerprint", "SHA256:...")
    user, user_id = _key_owner(s, a)
    a.finish(["fingerprint", "user"])
    items = [_key_row(i) for i in s.api.request("GET", f"/users/{user_id}/ssh-keys")["items"]]
    match = [i for i in items if i["fingerprint"] == fingerprint]
    if not match:
        raise CommandError(
            f"{user} has no key {fingerprint}", "listSshKey shows the fingerprints", code="not_found"
        )
    s.api.request("DELETE", f"/users/{user_id}/ssh-keys/{match[0]['id']}")
    return Outcome(data=match[0], text=f"key {fingerprint} of {user} deleted")


def do_exit(s: Session, a: Args) -> Outcome:
    a.finish([])
    return Outcome(exit=True)


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Callable[[Session, Args], Outcome]
    typed: bool = False  # the first word is an object type
    attrs: tuple[str, ...] = ()  # fixed attribute names (typed commands get theirs from the live schema)
    job: bool = False  # starts a job: takes wait=


def _commands() -> list[Command]:
    sel = "TYPE id=ID|name=NAME"
    return [
        Command(
            "list",
            "list TYPE [FILTER=VALUE ...] [limit=N]",
            "list objects (filters: equality)",
            do_list,
            True,
        ),
        Command("show", f"show {sel}", "show one object", do_show, True),
        Command(
            "create", "create TYPE ATTR=VALUE ...", "create an object (a job)", do_create, True, job=True
        ),
        Command("edit", f"edit {sel} ATTR=VALUE ...", "change an object (a job)", do_edit, True, job=True),
        Command("delete", f"delete {sel}", "delete an object (a job)", do_delete, True, job=True),
        Command(
            "start",
            "start Vm id=ID|name=NAME [server=NAME|ID]",
            "start a VM (on its server, the one named, or the least loaded) (a job)",
            vm_action("start", None),
            True,
            attrs=("server",),
            job=True,
        ),
        Command(
            "stop",
            "stop Vm id=ID|name=NAME",
            "shut a VM down cleanly (a job)",
            vm_action("stop", {"force": False}),
            True,
            job=True,
        ),
        Command(
            "kill",
            "kill Vm id=ID|name=NAME",
            "power a VM off at once (a job)",
            vm_action("stop", {"force": True}),
            True,
            job=True,
        ),
        Command(
            "discoverServer",
            "discoverServer ipAddress=ADDRESS password=AGENT_PASSWORD [name=NAME] [agentPort=8899]",
            "discover a server by its agent password and take ownership (a job)",
            do_discover,
            attrs=("ipAddress", "password", "name", "agentPort"),
            job=True,
        ),
        Command(
            "releaseServer",
            "releaseServer id=ID|name=NAME [force=true]",
            "release ownership of a server; force=true also when its agent does not answer (a job)",
            do_release,
            attrs=("id", "name", "address", "force"),
            job=True,
        ),
        Command(
            "refresh",
            "refresh Server id=ID|name=NAME",
            "rebuild the manager's view of a server from its agent (a job)",
            do_refresh,
            True,
            job=True,
        ),
        Command("refreshAll", "refreshAll", "refresh every server (a job)", do_refresh_all, job=True),
        Command(
            "abort", "abort Job id=ID", "abort a queued job or ask a running one to stop", do_abort, True
        ),
        Command(
            "ackEvent", "ackEvent id=ID", "acknowledge an event (a job)", do_ack, attrs=("id",), job=True
        ),
        Command("backupDb", "backupDb", "back the manager database up now (a job)", do_backup, job=True),
        Command("getDbBackupConfig", "getDbBackupConfig", "show the backup schedule", do_get_backup_config),
        Command(
            "setDbBackupConfig",
            "setDbBackupConfig [interval=MINUTES] [keep=COUNT]",
            "change the backup schedule (a job)",
            do_set_backup_config,
            attrs=("interval", "keep"),
            job=True,
        ),
        Command(
            "createEnrollmentToken",
            "createEnrollmentToken [ttl=24h] [uses=N]",
            "make a one-time token servers enrol with at install time",
            do_enrollment_token,
            attrs=("ttl", "uses"),
            job=True,
        ),
        Command(
            "showCaFingerprint",
            "showCaFingerprint",
            "the manager CA's SHA-256 fingerprint",
            do_ca_fingerprint,
        ),
        Command(
            "addSshKey",
            'addSshKey key="TYPE BASE64 [COMMENT]" [user=NAME]',
            "let this key log you in over SSH",
            do_add_key,
            attrs=("key", "user"),
        ),
        Command(
            "listSshKey",
            "listSshKey [user=NAME]",
            "your SSH keys (admins: anyone's)",
            do_list_keys,
            attrs=("user",),
        ),
        Command(
            "deleteSshKey",
            "deleteSshKey fingerprint=SHA256:... [user=NAME]",
            "remove an SSH key",
            do_delete_key,
            attrs=("fingerprint", "user"),
        ),
        Command(
            "set",
            "set [outputMode=text|json] [wait=true|false]",
            "session settings (no attributes: show them)",
            do_set,
            attrs=("outputMode", "wait"),
        ),
        Command(
            "help", "help [COMMAND [TYPE]]", "list the commands, or explain one", do_exit
        ),  # engine answers help
        Command("exit", "exit", "end the session", do_exit),
        Command("quit", "quit", "end the session", do_exit),
    ]


COMMANDS: dict[str, Command] = {c.name.lower(): c for c in _commands()}
