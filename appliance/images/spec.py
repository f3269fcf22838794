"""Role specs: packages, services and files of an image, as data (roles/*.toml) + jinja2 templates.

A role may ``include`` other roles: lists are concatenated (first occurrence wins), scalars of the
including role override. Nothing in the build branches on the role's name.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2

from appliance.errors import UsageError

ROLES_DIR = Path(__file__).with_name("roles")
TEMPLATES_DIR = Path(__file__).with_name("templates")

_LIST_KEYS = (
    "packages",
    "dpkg_path_excludes",
    "dpkg_path_includes",
    "remove_paths",
    "kernel_module_trim",
    "enable_services",
    "mask_services",
    "kernel_args",
    "venv_uninstall",
    "venv_remove_paths",
)
_SCALAR_KEYS = ("description", "variant", "install_appliance", "system_site_packages", "menu_title")
_FILE_KEYS = ("files", "bootstrap_files")
_ALLOWED = {*_LIST_KEYS, *_SCALAR_KEYS, "include", *_FILE_KEYS}


@dataclass(frozen=True)
class FileSpec:
    """A file put into the root filesystem, rendered from a template."""

    path: str
    template: str
    mode: int = 0o644


@dataclass(frozen=True)
class RoleSpec:
    name: str
    description: str
    variant: str
    packages: tuple[str, ...]
    dpkg_path_excludes: tuple[str, ...]
    dpkg_path_includes: tuple[str, ...]
    remove_paths: tuple[str, ...]
    kernel_module_trim: tuple[str, ...]
    install_appliance: bool
    system_site_packages: bool
    files: tuple[FileSpec, ...]
    # put into the root before the role's packages are installed (e.g. initramfs-tools hooks)
    bootstrap_files: tuple[FileSpec, ...]
    enable_services: tuple[str, ...]
    # units that must never start (systemctl mask): useless here and slow to start under emulation
    mask_services: tuple[str, ...]
    kernel_args: tuple[str, ...]
    menu_title: str
    # build-time-only packages uninstalled from our venv once it is complete (pip itself, setuptools)
    venv_uninstall: tuple[str, ...] = ()
    # files inside installed packages an appliance never loads (globs, relative to site-packages)
    venv_remove_paths: tuple[str, ...] = ()

    def bootstrap_inputs(self) -> dict[str, Any]:
        """What the bootstrapped base depends on (part of its cache key)."""
        return {
            "variant": self.variant,
            "packages": sorted(self.packages),
            "dpkg_path_excludes": list(self.dpkg_path_excludes),
            "dpkg_path_includes": list(self.dpkg_path_includes),
            "bootstrap_files": {
                path: [mode, hashlib.sha256(text.encode()).hexdigest()]
                for path, (mode, text) in sorted(render_bootstrap_files(self).items())
            },
        }

    def digest(self) -> str:
        """SHA-256 of the whole spec including its templates' text (recorded in the manifest)."""
        h = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        for f in (*self.files, *self.bootstrap_files):
            h.update((TEMPLATES_DIR / f.template).read_bytes())
        return h.hexdigest()


def available_roles(roles_dir: Path = ROLES_DIR) -> list[str]:
    return sorted(p.stem for p in roles_dir.glob("*.toml"))


def _read_role(name: str, roles_dir: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    if name in seen:
        raise UsageError(f"role spec include loop: {' -> '.join((*seen, name))}", hint="fix 'include' lists")
    path = roles_dir / f"{name}.toml"
    if not path.is_file():
        raise UsageError(
            f"unknown image role {name!r}", hint=f"choose one of: {', '.join(available_roles(roles_dir))}"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"role spec {path} is not valid TOML: {err}", hint="fix the file") from err
    unknown = set(data) - _ALLOWED
    if unknown:
        raise UsageError(
            f"role spec {path}: unknown keys {sorted(unknown)}", hint=f"allowed: {sorted(_ALLOWED)}"
        )
    merged: dict[str, Any] = {k: [] for k in (*_LIST_KEYS, *_FILE_KEYS)}
    for parent in data.get("include", []):
        _merge(merged, _read_role(parent, roles_dir, (*seen, name)))
    _merge(merged, data)
    return merged


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key in _LIST_KEYS:
        for item in data.get(key, []):
            if item not in into[key]:
                into[key].append(item)
    for kind in _FILE_KEYS:
        files = {f["path"]: f for f in into[kind]}
        for f in data.get(kind, []):
            files[f["path"]] = f
        into[kind] = list(files.values())
    for key in _SCALAR_KEYS:
        if key in data:
            into[key] = data[key]


def _file_specs(name: str, entries: list[dict[str, Any]]) -> tuple[FileSpec, ...]:
    files = []
    for f in entries:
        if not str(f.get("path", "")).startswith("/") or "template" not in f:
            raise UsageError(f"role {name}: file entry {f} needs an absolute 'path' and a 'template'")
        files.append(FileSpec(path=f["path"], template=f["template"], mode=int(f.get("mode", 0o644))))
    return tuple(files)


def load_role(name: str, roles_dir: Path = ROLES_DIR) -> RoleSpec:
    data = _read_role(name, roles_dir, ())
    return RoleSpec(
        name=name,
        description=data.get("description", name),
        variant=data.get("variant", "minbase"),
        packages=tuple(data["packages"]),
        dpkg_path_excludes=tuple(data["dpkg_path_excludes"]),
        dpkg_path_includes=tuple(data["dpkg_path_includes"]),
        remove_paths=tuple(data["remove_paths"]),
        kernel_module_trim=tuple(data["kernel_module_trim"]),
        install_appliance=bool(data.get("install_appliance", False)),
        system_site_packages=bool(data.get("system_site_packages", True)),
        files=_file_specs(name, data["files"]),
        bootstrap_files=_file_specs(name, data["bootstrap_files"]),
        enable_services=tuple(data["enable_services"]),
        mask_services=tuple(data["mask_services"]),
        kernel_args=tuple(data["kernel_args"]),
        menu_title=data.get("menu_title", f"appliance {name}"),
        venv_uninstall=tuple(data["venv_uninstall"]),
        venv_remove_paths=tuple(data["venv_remove_paths"]),
    )


def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_files(spec: RoleSpec, variables: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Rendered role files: absolute path in the image -> (mode, text)."""
    return _render(spec, spec.files, variables)


def render_bootstrap_files(spec: RoleSpec) -> dict[str, tuple[int, str]]:
    """Rendered bootstrap files (variables: role, description only): path -> (mode, text)."""
    return _render(spec, spec.bootstrap_files, {})


def _render(spec: RoleSpec, specs: tuple[FileSpec, ...], variables: dict[str, Any]) -> dict[str, tuple[int, str]]:
    env = template_env()
    context = {"role": spec.name, "description": spec.description, **variables}
    out: dict[str, tuple[int, str]] = {}
    for f in specs:
        try:
            text = env.get_template(f.template).render(**context)
        except jinja2.TemplateError as err:
            raise UsageError(f"role {spec.name}: template {f.template} failed: {err}") from err
        out[f.path] = (f.mode, text)
    return out
