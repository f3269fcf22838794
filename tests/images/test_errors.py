"""User-facing errors of the image build: what went wrong, how to fix it, nothing half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.errors import ApplianceError, ConfigError, UsageError
from appliance.images import hosttools
from appliance.images.config import BuildConfig, BuildContext
from appliance.images.embed import embed_kickstart
from appliance.images.isowriter import write_iso
from appliance.images.spec import load_role
from appliance.images.steps import explain_bootstrap_failure
from tests.images.test_isowriter_gpt import LAYOUT, _tree


def _ctx(tmp_path: Path) -> BuildContext:
    return BuildContext(BuildConfig("server", tmp_path, tmp_path), load_role("server"), tmp_path)


def test_missing_host_tool_names_the_debian_package() -> None:
    assert hosttools.missing_tools(["sh", *hosttools.BUILD_TOOLS]) == []
    assert hosttools.missing_tools(["no-such-tool-xyz"]) == ["no-such-tool-xyz"]
    with pytest.raises(ConfigError, match="squashfs-tools") as err:
        hosttools.require(["absent-mksquashfs"], tool_packages={"absent-mksquashfs": "squashfs-tools"})
    assert err.value.hint and "apt-get install squashfs-tools" in err.value.hint


def test_bootstrap_failures_are_explained(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    net = explain_bootstrap_failure("W: Failed to fetch http://deb.debian.org/... Temporary failure resolving", ctx)
    assert isinstance(net, ApplianceError) and "cannot download" in net.message and net.hint
    pkg = explain_bootstrap_failure("E: Unable to locate package xen-sytem-amd64\n", ctx)
    assert isinstance(pkg, UsageError) and "'xen-sytem-amd64'" in pkg.message and "role server" in str(pkg.hint)
    pkg2 = explain_bootstrap_failure("E: Package 'foo' has no installation candidate\n", ctx)
    assert isinstance(pkg2, UsageError) and "'foo'" in pkg2.message
    disk = explain_bootstrap_failure("dpkg: error: No space left on device", ctx)
    assert disk is not None and "disk filled up" in disk.message
    assert explain_bootstrap_failure("something else", ctx) is None


def test_embed_ks_rejects_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "plain.iso"
    write_iso(_tree(tmp_path / "tree"), plain, LAYOUT)  # an ISO without /.disk/appliance-boot.json
    ks = tmp_path / "ks.cfg"
    ks.write_text("text\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UsageError, match="not an appliance ISO"):
        embed_kickstart(plain, ks, out / "o.iso")
    with pytest.raises(UsageError, match="no such ISO"):
        embed_kickstart(tmp_path / "missing.iso", ks, out / "o.iso")
    with pytest.raises(UsageError, match="new file"):
        embed_kickstart(plain, ks, plain)
    (tmp_path / "empty.cfg").write_text("  \n")
    with pytest.raises(UsageError, match="empty"):
        embed_kickstart(plain, tmp_path / "empty.cfg", out / "o.iso")
    (tmp_path / "latin1.cfg").write_bytes(b"rootpw \xe9\n")
    with pytest.raises(UsageError, match="UTF-8"):
        embed_kickstart(plain, tmp_path / "latin1.cfg", out / "o.iso")
    (tmp_path / "junk.iso").write_bytes(b"\0" * 70000)
    with pytest.raises(UsageError, match="not a readable ISO"):
        embed_kickstart(tmp_path / "junk.iso", ks, out / "o.iso")
    assert list(out.iterdir()) == []
    shutil.rmtree(tmp_path / "tree")
