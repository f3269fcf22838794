"""Kickstarts for lab hosts (pure text). Every host gets its segment address statically; the
second NIC (the host's forwarded ports) takes DHCP from QEMU through the image's catch-all
networkd file."""

from __future__ import annotations

from dataclasses import dataclass

# Bump when the text below changes in a way that changes the installed disks (cache key).
KICKSTART_FORMAT = 4
# Page zeroing at allocation is slow under TCG (field notes: 10-35 s of a boot); lab hosts skip it.
LAB_KERNEL_OPTIONS = "init_on_alloc=0"


@dataclass(frozen=True)
class HostKickstart:
    hostname: str
    mac: str  # the segment NIC
    ip: str  # on the segment, /24
    root_hash: str  # crypt(3) SHA-512
    ssh_public_key: str  # root's authorized key (lab ssh)


def _common(host: HostKickstart) -> list[str]:
    return [
        "lang en_US.UTF-8",
        "keyboard --vckeymap=us",
        "timezone Etc/UTC",
        f"network --bootproto=static --device={host.mac} --ip={host.ip} --netmask=255.255.255.0 "
        f"--hostname={host.hostname}",
        f"rootpw --iscrypted {host.root_hash}",
        f'sshkey --username=root "{host.ssh_public_key}"',
        "clearpart --all --initlabel",
        "autopart",
        "poweroff",
    ]


def manager_kickstart(host: HostKickstart, admin_password: str) -> str:
    return "\n".join([
        *_common(host),
        f'bootloader --append="console=ttyS0,115200n8 {LAB_KERNEL_OPTIONS}"',
        f"manageradmin {admin_password}",
        "",
    ])  # fmt: skip


def server_kickstart(host: HostKickstart, agent_hash: str, manager_url: str | None = None,
                     fingerprint: str | None = None, token: str | None = None) -> str:  # fmt: skip
    """A Xen server; with a manager named it enrols at install time over the segment."""
    lines = [
        *_common(host),
        f'bootloader --append="{LAB_KERNEL_OPTIONS}"',
        f"ovsagent --iscrypted {agent_hash}",
    ]
    if manager_url:
        lines += [
            f"enroll --manager={manager_url} --fingerprint={fingerprint} --token={token}",
            # the live system needs its segment address for the install-time enrollment
            "%pre",
            f"dev=$(grep -l '{host.mac}' /sys/class/net/*/address | cut -d/ -f5)",
            f'ip link set "$dev" up && ip addr add {host.ip}/24 dev "$dev"',
            "%end",
        ]
    return "\n".join([*lines, ""])
