"""Where the answers come from: kernel arguments, the install medium, a labelled disk or the network.

  ks=cdrom:/PATH            a file on the install medium (the ISO's "Automatic install" entry uses
                            ks=cdrom:/ks.cfg for the kickstart embedded in the ISO)
  ks=hd:LABEL=NAME:/PATH    a file on the filesystem labelled NAME (also hd:sdb1:/PATH)
  ks=http(s)://HOST/PATH    pinned by ks.sha256=HEX (the file's SHA-256) or, for https, by
                            ks.tlsfp=SHA256 (the server certificate's fingerprint)
  a disk labelled OEMDRV    holding /ks.cfg, used when no ks= is given (Anaconda's convention)
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError, UsageError
from appliance.installer.cleanup import CleanupStack

LIVE_MEDIUM = Path("/run/live/medium")
OEMDRV_LABEL = "OEMDRV"
FETCH_TIMEOUT_S = 30.0
# the live system starts the installer without waiting for the network: wait here when it is needed
NETWORK_WAIT_S = 90.0
NETWORK_RETRY_S = 2.0
MAX_KICKSTART_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BootOptions:
    """What the installer reads from the kernel command line."""

    ks: str | None = None
    ks_sha256: str | None = None
    ks_tlsfp: str | None = None
    auto: bool = False
    role: str | None = None


def parse_cmdline(text: str) -> BootOptions:
    values: dict[str, str] = {}
    flags: set[str] = set()
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    for word in words:
        if word == "--":
            break
        key, sep, value = word.partition("=")
        if sep:
            values[key] = value
        else:
            flags.add(key)
    return BootOptions(
        ks=values.get("inst.ks") or values.get("ks"),
        ks_sha256=values.get("inst.ks.sha256") or values.get("ks.sha256"),
        ks_tlsfp=values.get("inst.ks.tlsfp") or values.get("ks.tlsfp"),
        auto="inst.auto" in flags or values.get("inst.auto") in ("1", "yes", "true"),
        role=values.get("appliance.role"),
    )


def plain_hex(value: str) -> str:
    """A SHA-256 as given on the kernel line (any case, optional sha256: prefix and colons) as plain hex."""
    return value.lower().removeprefix("sha256:").replace(":", "")


def check_sha256(data: bytes, expected: str, name: str) -> None:
    import hashlib  # loads OpenSSL: only when a checksum is pinned

    actual = hashlib.sha256(data).hexdigest()
    if actual != plain_hex(expected):
        raise ConfigError(f"kickstart {name} has SHA-256 {actual}, but ks.sha256 pins {plain_hex(expected)}",
                          "the file changed or the pin is wrong: fix ks.sha256= (sha256sum FILE)")


def _decode(data: bytes, name: str) -> str:
    if len(data) > MAX_KICKSTART_BYTES:
        raise ConfigError(f"kickstart {name} is larger than 1 MiB", "is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"kickstart {name} is not UTF-8 text", "save it as UTF-8") from err


def _read_on_device(device: str, path: str, cleanup: CleanupStack) -> bytes:
    """Mount ``device`` read-only in a temporary directory and read ``path`` from it."""
    where = Path(tempfile.mkdtemp(prefix="appliance-ks-"))
    cleanup.push(f"remove {where}", where.rmdir)
    proc = subprocess.run(["mount", "-o", "ro", device, str(where)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ConfigError(f"cannot mount {device} to read the kickstart: {proc.stderr.strip()}",
                          "check the device and its filesystem")
    cleanup.push(f"unmount {where}", lambda: subprocess.run(["umount", str(where)], check=True))
    file = where / path.lstrip("/")
    if not file.is_file():
        raise ConfigError(f"{device} has no file {path}", "check the path in ks=")
    return file.read_bytes()


def find_by_label(label: str) -> str | None:
    proc = subprocess.run(["blkid", "-L", label], capture_output=True, text=True, check=False)
    device = proc.stdout.strip()
    return device or None


def _fetch_hd(spec: str, cleanup: CleanupStack) -> bytes:
    # hd:LABEL=NAME:/PATH or hd:sdb1:/PATH
    rest = spec.removeprefix("hd:")
    where, sep, path = rest.rpartition(":")
    if not sep or not where or not path.startswith("/"):
        raise UsageError(f"ks={spec}: expected hd:LABEL=NAME:/PATH or hd:DEVICE:/PATH",
                         "e.g. ks=hd:LABEL=KS:/server.ks")
    if where.startswith("LABEL="):
        device = find_by_label(where.removeprefix("LABEL="))
        if device is None:
            raise ConfigError(f"no filesystem labelled {where.removeprefix('LABEL=')} (ks={spec})",
                              "plug in the disk holding the kickstart, or fix the label")
    else:
        device = where if where.startswith("/dev/") else f"/dev/{where}"
    return _read_on_device(device, path, cleanup)


def _fetch_cdrom(spec: str, cleanup: CleanupStack, medium: Path) -> bytes:
    path = spec.removeprefix("cdrom:")
    if not path.startswith("/"):
        raise UsageError(f"ks={spec}: expected cdrom:/PATH", "e.g. ks=cdrom:/ks.cfg")
    file = medium / path.lstrip("/")
    if file.is_file():
        return file.read_bytes()
    proc = subprocess.run(["blkid", "-t", "TYPE=iso9660", "-o", "device"], capture_output=True, text=True,
                          check=False)
    for device in proc.stdout.split():
        try:
            return _read_on_device(device, path, cleanup)
        except ConfigError:
            continue
    raise ConfigError(f"the install medium has no {path} (ks={spec})",
                      "rebuild the ISO with the kickstart embedded, or give ks= another source")


def fetch_kickstart(spec: str, *, sha256: str | None = None, tlsfp: str | None = None,
                    medium: Path = LIVE_MEDIUM, network_wait_s: float = NETWORK_WAIT_S) -> tuple[str, str]:
    """(text, name for messages) of the kickstart named by ``spec``; nothing stays mounted. A network
    source is retried for ``network_wait_s`` while the network is not up yet."""
    with CleanupStack() as cleanup:
        if spec.startswith(("http://", "https://")):
            from appliance.installer.http_source import fetch_http  # ssl, http: only for a network kickstart

            data = fetch_http(spec, sha256, tlsfp, network_wait_s)
        elif spec.startswith("cdrom:"):
            data = _fetch_cdrom(spec, cleanup, medium)
        elif spec.startswith("hd:"):
            data = _fetch_hd(spec, cleanup)
        else:
            path = Path(spec.removeprefix("file:"))
            try:
                data = path.read_bytes()
            except OSError as err:
                raise UsageError(f"cannot read kickstart {path}: {err.strerror}",
                                 "give a readable file, or cdrom:/, hd:LABEL=...:/ or http(s)://") from err
        if sha256:
            check_sha256(data, sha256, spec)
        return _decode(data, spec), spec


def find_oemdrv_kickstart() -> tuple[str, str] | None:
    """ks.cfg from a disk labelled OEMDRV, if one is plugged in."""
    device = find_by_label(OEMDRV_LABEL)
    if device is None:
        return None
    with CleanupStack() as cleanup:
        data = _read_on_device(device, "/ks.cfg", cleanup)
    return _decode(data, f"{device}:/ks.cfg"), f"OEMDRV({device}):/ks.cfg"
