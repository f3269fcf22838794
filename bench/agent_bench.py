"""Server agent benchmarks → the "## Agent" section of BENCHMARKS.md.

  .venv/bin/python bench/agent_bench.py [--no-qemu]

1. XML-RPC round trip over TLS with keep-alive on loopback (agent as its own process,
   test:///default): p50/p95/p99 of ``system.listMethods`` and ``discover_server``.
2. 100 concurrent clients (own keep-alive connection each), 20 calls each: errors and throughput.
3. start_vm through the agent vs a direct libvirt ``create()`` of the same tiny guest on
   qemu:///system (TCG), median of several alternating runs (skipped with --no-qemu).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xmlrpc.client
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PASSWORD = "bench-password"


class AgentProc:
    def __init__(self, state: Path, uri: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "appliance", "agent", "set-password", "--state-dir", str(state)],
            input=PASSWORD,
            text=True,
            check=True,
            capture_output=True,
        )
        self.state = state
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "agent",
                "serve",
                "--state-dir",
                str(state),
                "--listen",
                "127.0.0.1:0",
                "--hypervisor",
                uri,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
        self.ctx = ssl.create_default_context(cafile=str(state / "tls/agent.crt"))

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)

    def call(self, conn: http.client.HTTPSConnection, method: str, *params: object) -> object:
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
        auth = base64.b64encode(f"oracle:{PASSWORD}".encode()).decode()
        conn.request("POST", "/", body, {"Content-Type": "text/xml", "Authorization": f"Basic {auth}"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return xmlrpc.client.loads(data)[0][0]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def bench_round_trip(agent: AgentProc, n: int = 2000) -> dict[str, tuple[float, float, float]]:
    out = {}
    conn = agent.connection()
    for method in ("system.listMethods", "discover_server"):
        for _ in range(50):
            agent.call(conn, method)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            agent.call(conn, method)
            times.append((time.perf_counter() - t) * 1000)
        out[method] = (pct(times, 50), pct(times, 95), pct(times, 99))
    conn.close()
    return out


def bench_concurrency(agent: AgentProc, clients: int = 100, calls: int = 20) -> tuple[int, int, float]:
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        try:
            conn = agent.connection()
            start.wait()
            for _ in range(calls):
                agent.call(conn, "discover_server")
            conn.close()
        except Exception as err:
            errors.append(repr(err))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return clients * calls, len(errors), clients * calls / elapsed


def bench_start_vm(workdir: Path, runs: int = 7) -> tuple[float, float, float, str]:
    import libvirt

    from appliance.server.domainxml import Flavor, build_domain_xml
    from appliance.server.vmspec import parse_vm_spec
    from tests.agent.guest import build_initramfs
    from tests.agent.libvirtd import Libvirtd

    daemon = Libvirtd(workdir, "qemu:///system")
    daemon.start()
    kernel, initramfs = build_initramfs(workdir)
    boot = {"kernel": str(kernel), "initrd": str(initramfs), "cmdline": "console=ttyS0 quiet"}
    agent = AgentProc(workdir / "agent", "qemu:///system")
    conn = libvirt.open("qemu:///system")
    rpc = agent.connection()
    direct_name, via_name = f"bench-direct-{uuid.uuid4().hex[:6]}", f"bench-agent-{uuid.uuid4().hex[:6]}"
    try:
        spec = parse_vm_spec({"name": direct_name, "memory_mib": 128, "boot": boot})
        direct = conn.defineXML(build_domain_xml(spec, Flavor("qemu", "tcg")))
        via = agent.call(rpc, "create_vm", {"name": via_name, "memory_mib": 128, "boot": boot})["uuid"]  # type: ignore[index]
        via_dom = conn.lookupByUUIDString(via)
        d_times, a_times = [], []
        for _ in range(runs):
            # Each start from a quiet host: libvirtd and the agent finish handling the previous
            # destroy (cleanup, lifecycle event) before the next start is timed.
            t = time.perf_counter()
            direct.create()
            d_times.append(time.perf_counter() - t)
            direct.destroy()
            time.sleep(1.0)
            t = time.perf_counter()
            agent.call(rpc, "start_vm", via)
            a_times.append(time.perf_counter() - t)
            via_dom.destroy()
            time.sleep(1.0)
        d, a = statistics.median(d_times), statistics.median(a_times)
        spread = (
            f"direct {min(d_times) * 1000:.0f}-{max(d_times) * 1000:.0f} ms,"
            f" via agent {min(a_times) * 1000:.0f}-{max(a_times) * 1000:.0f} ms"
        )
        return d * 1000, a * 1000, (a - d) / d * 100, spread
    finally:
        for name in (direct_name, via_name):
            try:
                dom = conn.lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError:
                pass
        conn.close()
        agent.stop()
        daemon.stop()


def write_section(text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "## Agent\n\n" + text.strip() + "\n"
    match = re.search(r"^## Agent\n.*?(?=^## |\Z)", current, flags=re.S | re.M)
    if match:
        updated = (
            current[: match.start()]
            + section
            + ("\n" if current[match.end() :] else "")
            + current[match.end() :]
        )
    else:
        updated = current.rstrip("\n") + "\n\n" + section
    path.write_text(updated)


def bench_added_cost(workdir: Path, runs: int = 300) -> tuple[float, float]:
    """What the agent adds to a start, without QEMU's noise: start_vm through the agent vs a direct
    ``create()`` of the same domain on libvirt's test driver (whose create is near-instant).
    Returns (direct median ms, via-agent median ms)."""
    import libvirt

    from appliance.server.domainxml import Flavor, build_domain_xml
    from appliance.server.vmspec import parse_vm_spec

    boot = {"kernel": "/boot/vmlinuz-bench", "initrd": "/boot/initrd-bench", "cmdline": "quiet"}
    agent = AgentProc(workdir / "cost", "test:///default")
    conn = libvirt.open("test:///default")
    rpc = agent.connection()
    try:
        spec = parse_vm_spec({"name": "cost-direct", "memory_mib": 64, "boot": boot})
        direct = conn.defineXML(build_domain_xml(spec, Flavor("test", "tcg")))
        via = agent.call(rpc, "create_vm", {"name": "cost-agent", "memory_mib": 64, "boot": boot})["uuid"]  # type: ignore[index]
        d_times, a_times = [], []
        for _ in range(runs):  # interleaved, so drift in machine load hits both alike
            t = time.perf_counter()
            direct.create()
            d_times.append(time.perf_counter() - t)
            direct.destroy()
            t = time.perf_counter()
            agent.call(rpc, "start_vm", via)
            a_times.append(time.perf_counter() - t)
            agent.call(rpc, "stop_vm", via, True)
        return statistics.median(d_times) * 1000, statistics.median(a_times) * 1000
    finally:
        conn.close()
        agent.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--no-qemu", action="store_true", help="skip the start_vm comparison (needs QEMU, libvirtd)"
    )
    args = parser.parse_args()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/agent_bench.py` on this machine (2 cores, no KVM).",
        "",
        "| what | figure | goal |",
        "|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        print("round trips ...", flush=True)
        agent = AgentProc(Path(tmp) / "rt", "test:///default")
        try:
            rt = bench_round_trip(agent)
            print("100 concurrent clients ...", flush=True)
            total, errors, rate = bench_concurrency(agent)
        finally:
            agent.stop()
        for method, (p50, p95, p99) in rt.items():
            ok = "met" if p50 <= 5 else "NOT met"
            lines.append(
                f"| XML-RPC `{method}` over TLS, keep-alive, loopback | p50 {p50:.2f} ms, p95 {p95:.2f} ms,"
                f" p99 {p99:.2f} ms | p50 <= 5 ms ({ok}) |"
            )
        lines.append(
            f"| 100 concurrent clients x 20 `discover_server` | {total} calls, {errors} errors, {rate:.0f} calls/s"
            f" | no errors ({'met' if errors == 0 else 'NOT met'}) |"
        )
        print("what start_vm adds, on the test driver ...", flush=True)
        cost_direct, cost_agent = bench_added_cost(Path(tmp))
        added = cost_agent - cost_direct
        lines.append(
            f"| time start_vm adds to libvirt's `create()` (test driver, medians of 300 interleaved) |"
            f" direct {cost_direct:.2f} ms, via agent {cost_agent:.2f} ms: the agent adds {added:.2f} ms | (below) |"
        )
        if not args.no_qemu:
            print("start_vm vs direct libvirt (qemu:///system, TCG) ...", flush=True)
            direct_ms, agent_ms, overhead, spread = bench_start_vm(Path(tmp))
            share = added / direct_ms * 100
            lines.append(
                f"| start_vm overhead over a direct `create()` of a real tiny QEMU guest: added time / median"
                f" direct create | {added:.2f} ms / {direct_ms:.0f} ms = {share:.2f}% | <= 10%"
                f" ({'met' if share <= 10 else 'NOT met'}) |"
            )
            lines.append(
                f"| start_vm of a tiny guest, qemu:///system TCG, median of 7 | direct `create()` {direct_ms:.0f} ms,"
                f" via agent {agent_ms:.0f} ms: {overhead:+.1f}% (range: {spread})"
                " | (end to end; noisy) |"
            )
            lines += [
                "",
                "The agent adds one XML-RPC round trip (~1 ms, first rows), a SQLite read and one libvirt"
                " lookup to libvirt's `create()`; the spread of `create()` itself on this shared 2-core"
                " machine (other QEMU guests running) is far larger than that, so the end-to-end comparison is"
                " within noise in either direction. The overhead is therefore measured where libvirt's own"
                " time is near zero (the test driver, same agent code path) and set against the real"
                " `create()` time of a QEMU guest.",
            ]
    text = "\n".join(lines)
    print(text)
    write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
