"""Kickstart commands beyond stock pykickstart, written as pykickstart ``KickstartCommand`` classes.

Oracle VM Server 3.x commands (kept so existing Oracle kickstarts work):
  ovsagent [--iscrypted] PASSWORD     the agent's password (crypt(3) hash with --iscrypted)
  ovsmgmntif IFACE                    the management network interface
Ours:
  enroll --manager URL --fingerprint SHA256 --token TOKEN   a server enrols with its manager
  manageradmin PASSWORD               the manager's admin password
"""

from __future__ import annotations

from typing import Any

from pykickstart.base import KickstartCommand
from pykickstart.errors import KickstartParseError
from pykickstart.options import KSOptionParser
from pykickstart.version import RHEL5


class _SingleCommand(KickstartCommand):
    """A command that may appear once; later occurrences replace earlier ones (pykickstart's rule)."""

    name = ""

    def __init__(self, writePriority: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(writePriority, *args, **kwargs)
        self.op = self._getParser()

    def _getParser(self) -> KSOptionParser:  # each command below defines its options
        raise TypeError(f"{type(self).__name__} defines no option parser")

    def _parse_namespace(self, args: list[str]) -> Any:
        ns, extra = self.op.parse_known_args(args=args, lineno=self.lineno)
        if extra:
            raise KickstartParseError(
                f"{self.name}: unexpected arguments: {' '.join(extra)}", lineno=self.lineno
            )
        return ns


class OvsAgent(_SingleCommand):
    """Oracle VM Server's agent password: ``ovsagent [--iscrypted] PASSWORD``."""

    name = "ovsagent"

    def __init__(self, writePriority: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(writePriority, *args, **kwargs)
        self.password: str = ""
        self.isCrypted = False

    def _getParser(self) -> KSOptionParser:
        op = KSOptionParser(prog="ovsagent", description="Oracle VM Agent password.", version=RHEL5)
        op.add_argument(
            "--iscrypted",
            dest="isCrypted",
            action="store_true",
            default=False,
            version=RHEL5,
            help="the password is a crypt(3) hash",
        )
        op.add_argument("password", nargs=1, version=RHEL5, help="the password or its hash")
        return op

    def parse(self, args: list[str]) -> OvsAgent:
        ns = self._parse_namespace(args)
        self.isCrypted = ns.isCrypted
        self.password = ns.password[0]
        return self

    def __str__(self) -> str:
        if not self.seen:
            return ""
        return f"ovsagent {'--iscrypted ' if self.isCrypted else ''}{self.password}\n"


class OvsMgmntIf(_SingleCommand):
    """Oracle VM Server's management interface: ``ovsmgmntif IFACE``."""

    name = "ovsmgmntif"

    def __init__(self, writePriority: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(writePriority, *args, **kwargs)
        self.interface: str = ""

    def _getParser(self) -> KSOptionParser:
        op = KSOptionParser(prog="ovsmgmntif", description="Management interface.", version=RHEL5)
        op.add_argument("interface", nargs=1, version=RHEL5, help="interface name, e.g. eth0")
        return op

    def parse(self, args: list[str]) -> OvsMgmntIf:
        self.interface = self._parse_namespace(args).interface[0]
        return self

    def __str__(self) -> str:
        return f"ovsmgmntif {self.interface}\n" if self.seen else ""


class Enroll(_SingleCommand):
    """``enroll --manager URL --fingerprint SHA256 --token TOKEN``: a server joins its manager."""

    name = "enroll"

    def __init__(self, writePriority: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(writePriority, *args, **kwargs)
        self.manager = ""
        self.fingerprint = ""
        self.token = ""

    def _getParser(self) -> KSOptionParser:
        op = KSOptionParser(prog="enroll", description="Enrol this server with a manager.", version=RHEL5)
        op.add_argument("--manager", required=True, version=RHEL5, help="https://HOST:7002")
        op.add_argument(
            "--fingerprint",
            required=True,
            version=RHEL5,
            help="SHA-256 fingerprint of the manager's CA certificate",
        )
        op.add_argument("--token", required=True, version=RHEL5, help="enrollment token from the manager")
        return op

    def parse(self, args: list[str]) -> Enroll:
        ns = self._parse_namespace(args)
        self.manager, self.fingerprint, self.token = ns.manager, ns.fingerprint, ns.token
        return self

    def __str__(self) -> str:
        if not self.seen:
            return ""
        return f"enroll --manager {self.manager} --fingerprint {self.fingerprint} --token {self.token}\n"


class ManagerAdmin(_SingleCommand):
    """``manageradmin PASSWORD``: the manager's admin password (hashed by the manager at init)."""

    name = "manageradmin"

    def __init__(self, writePriority: int = 0, *args: Any, **kwargs: Any) -> None:
        super().__init__(writePriority, *args, **kwargs)
        self.password = ""

    def _getParser(self) -> KSOptionParser:
        op = KSOptionParser(prog="manageradmin", description="Manager admin password.", version=RHEL5)
        op.add_argument("password", nargs=1, version=RHEL5, help="the admin password")
        return op

    def parse(self, args: list[str]) -> ManagerAdmin:
        self.password = self._parse_namespace(args).password[0]
        return self

    def __str__(self) -> str:
        return f"manageradmin {self.password}\n" if self.seen else ""


CUSTOM_COMMANDS: dict[str, type[KickstartCommand]] = {
    "ovsagent": OvsAgent,
    "ovsmgmntif": OvsMgmntIf,
    "enroll": Enroll,
    "manageradmin": ManagerAdmin,
}
