"""The kickstart corpus against `appliance ks validate`: valid, invalid and Oracle VM Server 3.x files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.installer.passwords import verify_sha512_crypt
from appliance.installer.validate import validate_kickstart

HASH = "$6$appliance$AxJDR6qhUwE37cc612J/PM/AVmGIFshlRzv.Lv82EFlcotnPKo4GNv352sFe3TyDnY/TaOJIM.u8VuLlq1fCu."
BASE = f"""network --bootproto=dhcp --device=eth0 --hostname=h1.example.com
rootpw --iscrypted {HASH}
clearpart --all --initlabel
"""
SERVER = BASE + f"ovsagent --iscrypted {HASH}\n"
MANAGER = BASE + "manageradmin s3cret-admin\n"
FP = ":".join(["0f"] * 32)


def problems(text: str, role: str = "server") -> list[str]:
    return [str(p) for p in validate_kickstart(text, "t.ks", role).problems]


def errors(text: str, role: str = "server") -> list[str]:
    return [str(p) for p in validate_kickstart(text, "t.ks", role).errors]


def test_sample_kickstarts_are_valid(repo_root: Path) -> None:
    for name, role in (("manager.ks", "manager"), ("server.ks", "server"), ("ovm3-server.ks", "server")):
        result = validate_kickstart((repo_root / "kickstart" / name).read_text(), name, role)
        assert result.ok, result.report()
    assert validate_kickstart((repo_root / "kickstart/ovm3-server.ks").read_text(), "x", "server").dialect == "ovm3"


def test_minimal_server_and_manager() -> None:
    server = validate_kickstart(SERVER, "t.ks", "server")
    assert server.ok and server.dialect == "rhel9"
    assert server.answers is not None and server.answers.server is not None
    assert server.answers.server.agent_password_hash == HASH
    manager = validate_kickstart(MANAGER, "t.ks", "manager")
    assert manager.ok and manager.answers is not None and manager.answers.manager is not None


def test_plaintext_passwords_are_hashed() -> None:
    text = BASE.replace(f"rootpw --iscrypted {HASH}", "rootpw --plaintext hunter22") + "ovsagent agentpw\n"
    answers = validate_kickstart(text, "t.ks", "server").answers
    assert answers is not None and answers.server is not None and answers.root_password_hash
    assert verify_sha512_crypt("hunter22", answers.root_password_hash)
    assert verify_sha512_crypt("agentpw", answers.server.agent_password_hash)
    assert "hunter22" not in str(answers.to_dict()) and "***" in str(answers.to_dict())


@pytest.mark.parametrize(("text", "role", "expected"), [
    (SERVER + "raid / --level=1 --device=md0 raid.01\n", "server",
     "t.ks:5: 'raid' is not supported by the appliance installer"),
    (SERVER + "logvol / --vgname=vg --name=root --size=1\n", "server", "t.ks:5: 'logvol' is not supported"),
    (SERVER + "frobnicate --now\n", "server", "t.ks:5: Unknown command: frobnicate"),
    (SERVER + "network --bootproto=static --device=eth0 --ip=10.0.0.300 --netmask=255.255.255.0\n", "server",
     "only one network interface"),
    (BASE.replace("--bootproto=dhcp", "--bootproto=static --ip=192.0.2.5") + f"ovsagent --iscrypted {HASH}\n",
     "server", "t.ks:1: network --bootproto=static needs --ip=ADDRESS and --netmask=MASK"),
    (BASE + "ovsagent --iscrypted notahash\n", "server", "t.ks:4: ovsagent --iscrypted needs a crypt(3) hash"),
    (BASE, "server", "a server install needs the agent password"),
    (BASE, "manager", "a manager install needs the admin password"),
    (BASE + "manageradmin short\n", "manager", "t.ks:4: manageradmin: the password must have at least 8"),
    (SERVER + "enroll --manager=http://m:7002 --fingerprint=abc --token=t\n", "server",
     "t.ks:5: enroll --manager=http://m:7002: give the manager's https:// URL"),
    (SERVER + "enroll --manager=https://m:7002 --fingerprint=abc --token=t\n", "server",
     "t.ks:5: enroll --fingerprint: give the SHA-256 fingerprint"),
    (SERVER + "enroll --manager=https://m:7002\n", "server", "t.ks:5:"),
    (SERVER + "manageradmin whatever123\n", "server", "t.ks:5: 'manageradmin' is for manager installs"),
    (MANAGER + f"ovsagent --iscrypted {HASH}\n", "manager", "t.ks:5: 'ovsagent' is for server installs"),
    (BASE.replace("clearpart --all --initlabel\n", "") + f"ovsagent --iscrypted {HASH}\n", "server",
     "the installer erases the whole target disk"),
    (SERVER + "part / --size=1000 --grow\npart /srv --size=100 --grow\n", "server",
     "t.ks:6: only one partition can have --grow"),
    (SERVER + "part /srv --fstype=xfs --size=100\n", "server", "t.ks:5: part /srv: filesystem 'xfs' is not"),
    (SERVER + "part /srv --size=100\n", "server", "the part lines have no root partition"),
    (SERVER + "clearpart --all --drives=sda\nignoredisk --only-use=sdb\n", "server",
     "the appliance installs onto one disk"),
    (SERVER + "bootloader --location=none\n", "server", "t.ks:5: bootloader --location=none"),
    (SERVER + 'sshkey --username=root "not a key"\n', "server", "t.ks:5: sshkey --username=root: the key is not"),
    (SERVER + "%include /tmp/part.ks\n", "server", "t.ks:5: %include is not supported"),
    (BASE.replace("h1.example.com", "bad_host!") + f"ovsagent {HASH}\n", "server", "t.ks:1: 'bad_host!' is not a valid"),
])
def test_invalid_kickstarts_report_file_and_line(text: str, role: str, expected: str) -> None:
    found = errors(text, role)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(("line", "expected"), [
    ("firewall --disabled", "t.ks:5: warning: 'firewall' is ignored"),
    ("text", "t.ks:5: warning: 'text' is ignored"),
    ("skipx", "t.ks:5: warning: 'skipx' is ignored"),
    ("url --url=http://mirror/os", "t.ks:5: warning: 'url' is ignored"),
    ("%packages\n@core\n%end", "t.ks:5: warning: %packages is ignored"),
])
def test_meaningless_commands_are_accepted_with_a_warning(line: str, expected: str) -> None:
    result = validate_kickstart(SERVER + line + "\n", "t.ks", "server")
    assert result.ok, result.report()
    assert expected in result.report()


def test_oracle_vm_server_3_kickstart_keeps_working() -> None:
    text = f"""install
cdrom
lang en_US.UTF-8
keyboard us
network --device eth0 --bootproto dhcp --hostname ovs2.example.com
rootpw --iscrypted {HASH}
zerombr yes
clearpart --all --initlabel --drives=sda
part / --fstype ext3 --size=4096 --grow
ovsagent --iscrypted {HASH}
ovsmgmntif eth0
%packages
@base
%post
echo done
"""
    result = validate_kickstart(text, "ovs.ks", "server")
    assert result.ok, result.report()
    assert result.dialect == "ovm3"
    assert result.answers is not None and result.answers.server is not None
    assert result.answers.server.management_interface == "eth0"
    assert result.answers.scripts[0].body.strip() == "echo done"
    assert "ovs.ks:1: warning: 'install' is ignored" in result.report()


def test_missing_end_is_an_error_in_the_current_grammar_only() -> None:
    text = SERVER + "%post\necho no end\n"
    strict = validate_kickstart(text, "t.ks", "server", dialect="rhel9")
    assert "t.ks:6: Section %post does not end with %end." in strict.report()
    assert not strict.ok
    assert validate_kickstart(text, "t.ks", "server").dialect == "ovm3"  # auto: the old grammar accepts it


def test_ovsmgmntif_must_match_the_network_device() -> None:
    found = errors(SERVER + "ovsmgmntif eth1\n")
    assert any("t.ks:1: network --device=eth0 differs from 'ovsmgmntif eth1'" in e for e in found), found


def test_cli_prints_file_line_and_exits_nonzero(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.ks", tmp_path / "bad.ks"
    good.write_text(SERVER)
    bad.write_text(SERVER + "raid / --level=1\nvolgroup vg pv.01\n")
    ok = subprocess.run([sys.executable, "-m", "appliance", "ks", "validate", "--role", "server", str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run([sys.executable, "-m", "appliance", "ks", "validate", "--role", "server",
                             str(good), str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert f"{bad}:5: 'raid' is not supported" in "\n".join(lines)
    assert any(line.startswith(f"{bad}:6: 'volgroup'") for line in lines), lines
    assert "errors: nothing was installed or changed" in failed.stderr
