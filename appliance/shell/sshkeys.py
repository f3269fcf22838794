"""SSH public keys per manager user, kept under STATE_DIR/cli/, managed with addSshKey/listSshKey/deleteSshKey.

A key login still has to reach the WS-API as that user, and the WS-API only knows passwords and
tokens. So when a user adds a key (from a password login), their password is kept sealed with Fernet
(AES-128-CBC + HMAC) under a key file readable by root only, next to the manager's CA key and database
password. It is resealed at each password login and deleted with the user's last key. A WS-API
way to open a session for a key-authenticated user would remove this (docs/cli.md).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import asyncssh
from cryptography.fernet import Fernet, InvalidToken

from appliance.pki import write_private
from appliance.shell.api import CommandError

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_key(line: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(line.strip())
    except (asyncssh.KeyImportError, ValueError) as err:
        raise CommandError(
            f"not an SSH public key: {err}",
            'give the one line of your id_ed25519.pub (or id_rsa.pub): key="ssh-ed25519 AAAA... you@host"',
            code="bad_key",
            usage=True,
        ) from None


def describe(key: asyncssh.SSHKey) -> dict[str, str]:
    return {
        "fingerprint": key.get_fingerprint("sha256"),
        "type": key.get_algorithm(),
        "comment": key.get_comment() or "",
    }


class SshKeys:
    def __init__(self, root: Path) -> None:
        self.keys_dir = root / "authorized_keys"
        self.sealed_dir = root / "credentials"
        self.secret_file = root / "credentials.key"
        self._lock = threading.Lock()

    def _path(self, directory: Path, user: str) -> Path:
        if not USER_NAME.match(user):
            raise CommandError(f"{user!r} is not a user name", "user names are letters, digits, '.', '_', '-'")
        return directory / user

    def _fernet(self) -> Fernet:
        if not self.secret_file.exists():
            write_private(self.secret_file, Fernet.generate_key())
        return Fernet(self.secret_file.read_bytes().strip())

    def _read(self, user: str) -> list[asyncssh.SSHKey]:
        path = self._path(self.keys_dir, user)
        if not path.is_file():
            return []
        return [parse_key(line) for line in path.read_text().splitlines() if line.strip()]

    def _write(self, user: str, keys: list[asyncssh.SSHKey]) -> None:
        path = self._path(self.keys_dir, user)
        if not keys:
            path.unlink(missing_ok=True)
            self._path(self.sealed_dir, user).unlink(missing_ok=True)
            return
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = "".join(k.export_public_key("openssh").decode() for k in keys)
        write_private(path, text.encode())

    def _seal(self, user: str, password: str) -> None:
        self.sealed_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self._path(self.sealed_dir, user), self._fernet().encrypt(password.encode()))

    # --- the commands ---

    def add(self, user: str, key_line: str, password: str | None) -> dict[str, str]:
        key = parse_key(key_line)
        with self._lock:
            keys = self._read(user)
            if password is None and not self._path(self.sealed_dir, user).is_file():
                raise CommandError(
                    "adding a key needs a session you opened with your password",
                    "log in over SSH with your password, then run addSshKey",
                    code="password_login_needed",
                )
            if password is not None:
                self._seal(user, password)
            if all(k.public_data != key.public_data for k in keys):
                self._write(user, [*keys, key])
        return describe(key)

    def list(self, user: str) -> list[dict[str, str]]:
        with self._lock:
            return [describe(k) for k in self._read(user)]

    def remove(self, user: str, fingerprint: str) -> dict[str, str]:
        with self._lock:
            keys = self._read(user)
            keep = [k for k in keys if k.get_fingerprint("sha256") != fingerprint]
            if len(keep) == len(keys):
                raise CommandError(
                    f"{user} has no key with fingerprint {fingerprint}", "`listSshKey` shows them", code="not_found"
                )
            gone = next(k for k in keys if k.get_fingerprint("sha256") == fingerprint)
            self._write(user, keep)
        return describe(gone)

    # --- for the SSH server ---

    def has_keys(self, user: str) -> bool:
        return USER_NAME.match(user) is not None and self._path(self.keys_dir, user).is_file()

    def accepts(self, user: str, key: asyncssh.SSHKey) -> bool:
        if not self.has_keys(user):
            return False
        with self._lock:
            return any(k.public_data == key.public_data for k in self._read(user))

    def credential(self, user: str) -> str | None:
        path = self._path(self.sealed_dir, user)
        if not path.is_file():
            return None
        try:
            return self._fernet().decrypt(path.read_bytes()).decode()
        except InvalidToken:
            return None

    def password_login(self, user: str, password: str) -> None:
        """After a good password login: keep the sealed credential of a key user current."""
        if self.has_keys(user):
            with self._lock:
                self._seal(user, password)


def ensure_dir(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
