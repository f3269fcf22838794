"""Splitting a command line: shell-style quoting, ``;`` between commands, ``key=value`` attributes."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from appliance.shell.api import CommandError

KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def snake(name: str) -> str:
    """``ipAddress`` -> ``ip_address``; ``memory_mib`` stays. Oracle VM's camelCase and our names both work."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class Words:
    """One command: its verb, positional words and attributes in the order given."""

    verb: str
    positional: tuple[str, ...]
    attrs: tuple[tuple[str, str], ...]

    def keys(self) -> list[str]:
        return [k for k, _ in self.attrs]


def tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as err:
        raise CommandError(
            f"cannot split the command line: {err}", "close the quote", code="syntax", usage=True
        ) from None


def split_commands(line: str) -> list[list[str]]:
    """``a b; c d`` -> [["a", "b"], ["c", "d"]] (empty commands dropped)."""
    commands: list[list[str]] = [[]]
    for token in tokens(line):
        if token and set(token) == {";"}:
            commands.extend([] for _ in token)
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def parse(words: list[str]) -> Words:
    verb, *rest = words
    positional: list[str] = []
    attrs: list[tuple[str, str]] = []
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep:
            positional.append(word)
        elif KEY.match(key):
            attrs.append((snake(key), value))
        else:
            raise CommandError(
                f"{word!r}: {key!r} is not an attribute name",
                "write NAME=VALUE; names are letters, digits and '_'",
                code="syntax",
                usage=True,
            )
    return Words(verb, tuple(positional), tuple(attrs))
