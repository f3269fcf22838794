"""Scenarios on a whole lab: a manager and two Xen servers installed unattended from the ISOs, the
servers enrolling with the manager at install time (qemu_tests/lab.py; cached by their inputs).

Each test is one scenario of the e2e issue, in order: the installs and ownership, host checks over
SSH (testinfra), a tiny PV guest on server1 with its events and statistics, the manager powered
off and on while the guest runs, and a server released and discovered again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra
from cryptography import x509

from appliance import pki
from appliance.installer.passwords import verify_sha512_crypt
from qemu_tests.driver import Driver, results_root
from qemu_tests.lab import Lab, LabConfig
from qemu_tests.retry import retry
from qemu_tests.tinyguest import build_pv_initramfs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(4200)]  # the fixture may build and install everything

PV_INITRD = "/var/lib/appliance/pvguest.cpio.gz"  # copied in by the VM scenario
VM_BOOT = {"kernel": "/vmlinuz", "initrd": PV_INITRD, "cmdline": "console=hvc0 quiet init_on_alloc=0"}
DEFAULT_PASSWORDS = ("oracle", "password", "root", "admin", "changeme", "")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    results = results_root() / "cluster"
    with Driver(results, global_timeout=4000) as driver:
        the_lab = Lab(LabConfig(workdir=tmp_path_factory.mktemp("lab"), servers=2), driver)
        the_lab.up()
        the_lab.write_ssh_key()
        yield the_lab


@pytest.fixture(scope="module")
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.api_client() as client:
        yield client


def finished(client: httpx.Client, response: httpx.Response, timeout: float = 120) -> dict[str, Any]:
    """The job a 202 answer started, once finished (it must have succeeded)."""
    assert response.status_code == 202, response.text
    job = client.get(f"/jobs/{response.json()['id']}", params={"wait": timeout}, timeout=timeout + 30).json()
    assert job["state"] == "succeeded", job
    return dict(job)


def host(lab: Lab, name: str) -> Any:
    machine = lab.machines[name]
    key = lab.config.workdir / "id_ed25519"
    return testinfra.get_host(
        f"ssh://root@127.0.0.1:{machine.host_port(22)}", ssh_identity_file=str(key),
        ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    )  # fmt: skip


def server_ids(api: httpx.Client) -> dict[str, str]:
    return {s["name"].split(".")[0]: s["id"] for s in api.get("/servers").json()["items"]}


def test_servers_enrolled_at_install_are_owned_and_report(lab: Lab, api: httpx.Client) -> None:
    servers = {s["name"].split(".")[0]: s for s in api.get("/servers").json()["items"]}
    assert set(servers) == {"server1", "server2"}, servers
    for name, server in servers.items():
        assert server["state"] == "owned", server
        assert server["address"] == lab.machines[name].config.ip, server
        assert server["last_contact_at"], server


def test_manager_api_serves_the_installed_ca_and_checks_passwords(lab: Lab, api: httpx.Client) -> None:
    assert lab.secrets is not None
    assert api.get("/health").status_code == 200  # TLS verified against the CA the installer printed
    assert api.get("/me").json()["name"] == "admin"
    assert api.get("/me", auth=("admin", lab.secrets.admin_password + "x")).status_code == 401


@pytest.mark.parametrize("name", ["manager", "server1", "server2"])
def test_host_checks(lab: Lab, name: str) -> None:
    h = host(lab, name)
    assert h.service("ssh").is_running
    assert h.socket("tcp://0.0.0.0:22").is_listening or h.socket("tcp://:::22").is_listening
    ca_pem = lab._ca_pem()
    if name == "manager":
        for service in ("appliance-manager", "mariadb"):
            assert h.service(service).is_running, service
        for port in (7002, 10000):
            assert any(h.socket(f"tcp://{a}:{port}").is_listening for a in ("0.0.0.0", "::")), port
        assert h.run("mariadb -N -e 'SELECT 1'").stdout.strip() == "1"
        assert h.mount_point("/var/lib/mysql").exists
    else:
        for service in ("appliance-agent", "libvirtd"):
            assert h.service(service).is_running, service
        assert any(h.socket(f"tcp://{a}:8899").is_listening for a in ("0.0.0.0", "::"))
        assert (
            "Xen" in h.check_output("cat /sys/hypervisor/type 2>/dev/null || xl info | grep xen_version")
            or h.check_output("cat /sys/hypervisor/type") == "xen"
        )
        # the agent's client certificate chains to the manager's CA
        tls = "/var/lib/appliance/agent/tls"
        leaf = x509.load_pem_x509_certificate(h.file(f"{tls}/client.crt").content)
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
        assert h.file(f"{tls}/manager-ca.pem").content_string.strip() == ca_pem.strip()
    assert h.check_output("hostname -f") == f"{name}.lab" or h.check_output("hostname") == name
    assert len(h.file("/etc/machine-id").content_string.strip()) == 32
    assert not h.service("appliance-installer@ttyS0").is_enabled  # the live ISO's installer only
    # no default passwords: root's hash matches none of the usual ones
    shadow = h.check_output("getent shadow root").split(":")[1]
    assert shadow.startswith("$6$")
    assert not any(verify_sha512_crypt(p, shadow) for p in DEFAULT_PASSWORDS)
    assert pki.fingerprint(x509.load_pem_x509_certificate(ca_pem.encode()))


def test_ssh_host_keys_differ_on_every_host(lab: Lab) -> None:
    keys = {name: host(lab, name).check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
            for name in ("manager", "server1", "server2")}  # fmt: skip
    assert len(set(keys.values())) == 3, keys


STATE: dict[str, str] = {}


def test_vm_starts_on_server1_with_events_and_statistics(lab: Lab, api: httpx.Client, tmp_path: Path) -> None:
    start = time.monotonic()
    lab.copy_to(lab.machines["server1"], build_pv_initramfs(tmp_path), PV_INITRD)  # a busybox guest
    s1 = server_ids(api)["server1"]
    body = {
        "name": "tiny1",
        "vcpus": 1,
        "memory_mib": 128,
        "server_id": s1,
        "domain_type": "pv",
        "boot": VM_BOOT,
    }
    job = finished(api, api.post("/vms", json=body))
    vm = job["object_id"]
    STATE["vm"] = vm
    since = api.get("/events", params={"limit": 1, "since": 0}).json()["total"]
    finished(api, api.post(f"/vms/{vm}/start"), timeout=300)
    assert api.get(f"/vms/{vm}").json()["state"] == "running"
    # the hypervisor really runs it
    assert "running" in host(lab, "server1").check_output("virsh -c xen:///system domstate tiny1")
    lab.driver.record("scenario: PV guest defined and started on server1", time.monotonic() - start)

    def started_event() -> list[dict[str, Any]] | None:
        items = api.get("/events", params={"object_id": vm, "limit": 100}).json()["items"]
        return [e for e in items if e["type"] == "vm.started"] or None

    retry(started_event, timeout=120, what="the agent's vm.started event on the manager", interval=3)

    def statistics() -> list[Any] | None:
        series = api.get("/statistics", params={"object_type": "vm", "object_id": vm, "metric": "cpu_percent",
                                                "resolution": "raw"}).json()  # fmt: skip
        return series.get("points") or None

    retry(statistics, timeout=300, what="VM statistics from the agent", interval=10)
    assert since >= 0


def test_manager_off_vm_keeps_running_and_queued_events_arrive_once(lab: Lab, api: httpx.Client) -> None:
    vm = STATE.get("vm")
    if vm is None:
        pytest.skip("the VM scenario did not get a VM running")
    server1 = host(lab, "server1")
    start = time.monotonic()
    lab.shut_down(lab.manager)
    time.sleep(20)  # the agent notices the manager is gone and queues
    assert "running" in server1.check_output("virsh -c xen:///system domstate tiny1")
    # a lifecycle change while nobody listens: it must reach the manager exactly once later
    server1.check_output("virsh -c xen:///system destroy tiny1")
    lab.manager.start()
    lab.wait_for_api()
    lab.driver.record("scenario: manager power-cycled to its WS-API again", time.monotonic() - start)
    with lab.api_client() as client:

        def stopped() -> dict[str, Any] | None:
            row = client.get(f"/vms/{vm}").json()
            return row if row["state"] == "stopped" else None

        retry(stopped, timeout=300, what="the queued vm.stopped to reach the restarted manager", interval=5)
        items = client.get("/events", params={"object_id": vm, "limit": 100}).json()["items"]
    from_agent = [(e["source"], e["type"], e["time"], e["message"]) for e in items if e["source"] != "manager"]
    assert from_agent and len(from_agent) == len(set(from_agent)), items  # none doubled
    assert [e["type"] for e in items].count("vm.stopped") == 1, items  # the one stop, not lost, not twice
    assert [e["type"] for e in items].count("vm.started") == 1, items


def test_release_and_rediscover_a_server(lab: Lab) -> None:
    assert lab.secrets is not None
    with lab.api_client() as client:
        s2 = server_ids(client)["server2"]
        finished(client, client.post(f"/servers/{s2}/release", json={}), timeout=180)
        assert client.get(f"/servers/{s2}").status_code in (404, 200)
        body = {"address": lab.machines["server2"].config.ip, "agent_password": lab.secrets.agent_password}
        job = finished(client, client.post("/servers", json=body), timeout=180)
        rows = {s["name"].split(".")[0]: s for s in client.get("/servers").json()["items"]}
    assert rows["server2"]["state"] == "owned", (job, rows)


def test_results_folder_keeps_every_console(lab: Lab) -> None:
    for name in ("manager", "server1", "server2"):
        log = Path(lab.machines[name].console_log)
        assert log.stat().st_size > 0, log
