"""`appliance iso embed-ks`: add a kickstart to a built ISO and make the automatic install the default.

The ISO is rewritten with pycdlib (no rebuild): /ks.cfg is added (or replaced) and both boot menus
are re-rendered from /.disk/appliance-boot.json with the "Automatic install" entry as default.
"""

from __future__ import annotations

import calendar
import io
import os
from pathlib import Path

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from appliance.errors import UsageError
from appliance.images.bootmenu import BootMenuInputs, build_menu, render_grub_cfg, render_isolinux_cfg
from appliance.images.config import epoch_from_environment
from appliance.images.isowriter import iso9660_path, pinned_clock
from appliance.images.steps import iso_layout, normalise_and_check_gpt

BOOT_JSON = "/.disk/appliance-boot.json"
REPLACED = ("/isolinux/isolinux.cfg", "/boot/grub/grub.cfg", "/ks.cfg")


def read_kickstart(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read the kickstart {path}: {err.strerror}", hint="give an existing file") from err
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"the kickstart {path} is not UTF-8 text", hint="save it as UTF-8") from err
    if not data.strip():
        raise UsageError(f"the kickstart {path} is empty", hint="give a kickstart with the install commands")
    return data


def _read_file(iso: pycdlib.PyCdlib, path: str) -> bytes | None:
    buf = io.BytesIO()
    try:
        iso.get_file_from_iso_fp(buf, rr_path=path)
    except PyCdlibException:
        return None
    return buf.getvalue()


def _volume_epoch(iso: pycdlib.PyCdlib) -> int:
    d = iso.pvd.volume_creation_date
    return calendar.timegm((d.year, d.month, d.dayofmonth, d.hour, d.minute, d.second, 0, 0, 0))


def _replace(iso: pycdlib.PyCdlib, path: str, data: bytes) -> None:
    if _read_file(iso, path) is not None:
        iso.rm_file(iso9660_path(path, False), rr_name=path.rsplit("/", 1)[1])
    iso.add_fp(io.BytesIO(data), len(data), iso9660_path(path, False), rr_name=path.rsplit("/", 1)[1],
               file_mode=0o100444)  # fmt: skip


def embed_kickstart(iso_in: Path, kickstart: Path, out: Path) -> Path:
    if not iso_in.is_file():
        raise UsageError(f"no such ISO: {iso_in}", hint="give the path of an ISO made by `appliance build`")
    if out.resolve() == iso_in.resolve():
        raise UsageError("the output must be a new file, not the input ISO", hint="pass another -o path")
    if not out.parent.is_dir():
        raise UsageError(f"the output directory {out.parent} does not exist", hint="create it first")
    ks = read_kickstart(kickstart)
    tmp = out.with_name(f".{out.name}.partial")
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(iso_in))
    except PyCdlibException as err:
        raise UsageError(f"{iso_in} is not a readable ISO 9660 image: {err}", hint="check the file") from err
    try:
        boot_json = _read_file(iso, BOOT_JSON)
        if boot_json is None:
            raise UsageError(f"{iso_in} is not an appliance ISO (it has no {BOOT_JSON})",
                             hint="embed kickstarts into ISOs made by `appliance build`")  # fmt: skip
        inputs = BootMenuInputs.from_json(boot_json.decode())
        menu = build_menu(inputs, kickstart_embedded=True)
        epoch = epoch_from_environment()
        epoch = _volume_epoch(iso) if epoch is None else epoch
        with pinned_clock(epoch):
            _replace(iso, "/isolinux/isolinux.cfg", render_isolinux_cfg(menu).encode())
            _replace(iso, "/boot/grub/grub.cfg", render_grub_cfg(menu).encode())
            _replace(iso, "/ks.cfg", ks)
            iso.write(str(tmp))
        normalise_and_check_gpt(tmp, iso_layout(inputs.volume_id, epoch).seed)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        iso.close()
    return out
