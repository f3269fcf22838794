"""The command engine both front ends (SSH, local) and the legacy listener share.

``Engine.run_line`` runs one line (commands may be separated by ``;``; the first failure stops the
rest) and answers outcomes; the front ends only read lines and print what ``Outcome.render`` gives.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.shell import output
from appliance.shell.api import CommandError
from appliance.shell.commands import COMMANDS, Args, Command, reference_fields, selector_keys
from appliance.shell.schema import Field, parse_bool
from appliance.shell.session import Outcome, Session
from appliance.shell.types import TYPES, ObjectType, object_type, types_for
from appliance.shell.words import parse, split_commands

log = logging.getLogger(__name__)
SETTINGS_VALUES = {"output_mode": ("text", "json"), "wait": ("true", "false")}


def common_prefix(words: list[str]) -> str:
    """The longest start all ``words`` share."""
    if not words:
        return ""
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def exit_status(outcomes: list[Outcome]) -> int:
    return next((o.status for o in outcomes if o.status), 0)


class Engine(Session):
    def run_line(self, line: str) -> list[Outcome]:
        self.cancel.clear()
        try:
            commands = split_commands(line)
        except CommandError as err:
            return [Outcome(status=err.exit_code, error=err, mode=self.settings.output_mode)]
        outcomes = []
        for words in commands:
            outcome = self.run_words(words)
            outcomes.append(outcome)
            if outcome.status or outcome.exit:
                break
        return outcomes

    def run_words(self, words: list[str]) -> Outcome:
        mode = self.settings.output_mode
        self.wait_override = None
        try:
            parsed = parse(words)
            command = COMMANDS.get(parsed.verb.lower())
            if command is None:
                raise CommandError(
                    f"unknown command {parsed.verb!r}",
                    "`help` lists the commands",
                    code="unknown_command",
                    usage=True,
                )
            args = Args(command.name, parsed)
            if command.name != "set":
                asked = args.take("output_mode")
                if asked is not None:
                    if asked.lower() not in ("text", "json"):
                        raise CommandError(
                            f"outputMode={asked!r} is not text or json", "outputMode=json", usage=True
                        )
                    mode = asked.lower()
            if command.job:
                wait = args.take("wait")
                if wait is not None:
                    self.wait_override = parse_bool("wait", wait)
            if command.name == "help":
                outcome = self.help(args)
            else:
                outcome = command.handler(self, args)
                if command.name == "set":
                    mode = self.settings.output_mode
        except CommandError as err:
            outcome = Outcome(status=err.exit_code, error=err)
        except Exception as err:  # a bug must not end the user's session
            log.exception("command %r failed", words)
            outcome = Outcome(
                status=1,
                error=CommandError(
                    f"internal error ({type(err).__name__}: {err})", "see the log", code="internal"
                ),
            )
        outcome.mode = mode
        return outcome

    # --- help ---

    def attributes(self, command: Command, t: ObjectType | None) -> list[str]:
        """Attribute names ``command`` takes (on type ``t``), from the live schema where it has them."""
        names: list[str] = list(command.attrs)
        schema = self.cached_schema
        if t is not None and schema is not None:
            if command.name == "list":
                skip = {"limit", "offset", "since"}
                names += [k for k in schema.query_fields("GET", t.path) if k not in skip] + ["limit"]
                if t.name == "Event":
                    names.append("since")
            elif command.name in ("create", "edit"):
                method, path = ("POST", t.path) if command.name == "create" else ("PATCH", t.item)
                fields = schema.body_fields(method, path) or {}
                names += list(fields) + list(reference_fields(fields))
        if t is not None and command.name not in ("list", "create"):
            names = list(selector_keys(t)) + names
        if command.job:
            names.append("wait")
        return list(dict.fromkeys([*names, "outputMode"]))

    def help(self, args: Args) -> Outcome:
        name = args.word()
        type_word = args.word()
        args.finish([])
        if name is None:
            rows = [{"command": c.usage, "does": c.summary} for c in COMMANDS.values() if c.name != "quit"]
            text = (
                output.table(rows, ("command", "does"))
                + "\n\nTYPE is one of: "
                + ", ".join(t.name for t in TYPES.values())
                + "\n`help COMMAND [TYPE]` explains one; jobs are waited for unless wait=false."
            )
            return Outcome(data={"commands": rows}, text=text)
        command = COMMANDS.get(name.lower())
        if command is None:
            raise CommandError(
                f"unknown command {name!r}", "`help` lists the commands", code="unknown_command", usage=True
            )
        t = object_type(command.name, type_word) if command.typed and type_word else None
        if t is not None:
            _ = self.schema  # fetch once so the attributes come from the live manager
        lines = [f"usage: {command.usage}", command.summary]
        if command.typed:
            lines.append("TYPE: " + ", ".join(x.name for x in types_for(command.name)))
        fields = self._fields(command, t)
        if fields:
            lines.append("attributes:")
            lines += [f"  {f}" for f in fields]
        elif t is None and command.typed:
            lines.append(f"`help {command.name} TYPE` lists the attributes")
        data = {
            "command": command.name,
            "usage": command.usage,
            "summary": command.summary,
            "attributes": fields,
        }
        return Outcome(data=data, text="\n".join(lines))

    def _fields(self, command: Command, t: ObjectType | None) -> list[str]:
        schema = self.cached_schema
        described: dict[str, Field] = {}
        if t is not None and schema is not None and command.name in ("create", "edit"):
            method, path = ("POST", t.path) if command.name == "create" else ("PATCH", t.item)
            described = schema.body_fields(method, path) or {}
        out = []
        for name in self.attributes(command, t):
            out.append(described[name].describe() if name in described else f"{name}=")
        return out

    # --- completion ---

    def complete(self, text: str) -> list[str]:
        """Candidates for the word at the end of ``text`` (never calls the manager)."""
        words = text.split()
        current = "" if not words or text[-1:].isspace() else words.pop()
        candidates: list[str]
        if not words:
            candidates = [c.name for c in COMMANDS.values()]
        else:
            command = COMMANDS.get(words[0].lower())
            if command is None:
                return []
            if command.name == "help":
                candidates = [c.name for c in COMMANDS.values()] if len(words) == 1 else []
            elif command.typed and len(words) == 1:
                candidates = [t.name for t in types_for(command.name)]
            else:
                t = TYPES.get(words[1].lower()) if command.typed else None
                if command.typed and t is None:
                    return []
                candidates = self._attribute_candidates(command, t, current)
        return sorted(c for c in candidates if c.lower().startswith(current.lower()))

    def _attribute_candidates(self, command: Command, t: ObjectType | None, current: str) -> list[str]:
        key, sep, _ = current.partition("=")
        if not sep:
            return [f"{n}=" for n in self.attributes(command, t)]
        from appliance.shell.words import snake

        choices: Any = SETTINGS_VALUES.get(snake(key), ())
        schema = self.cached_schema
        if not choices and t is not None and schema is not None and command.name in ("create", "edit"):
            method, path = ("POST", t.path) if command.name == "create" else ("PATCH", t.item)
            field = (schema.body_fields(method, path) or {}).get(key)
            if field is not None:
                choices = field.choices or (("true", "false") if field.kind == "boolean" else ())
        return [f"{key}={c}" for c in choices]
