"""WS-API benchmark: a manager with 1,000 servers and 20,000 VMs in MariaDB, on this machine.

Run: .venv/bin/python bench/manager_api.py [--duration 20]
Everything runs on loopback: a private mariadbd, `appliance manager serve` over HTTPS, and the clients
(wrk for throughput, a Python keep-alive client for latency and ingest), all on the same cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import platform
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchfile import write_section

from appliance.manager import dbserver
from appliance.manager.database import make_engine
from appliance.manager.dburl import parse_db_url
from appliance.manager.schema import servers, vms
from appliance.manager.timeutil import utcnow

N_SERVERS, N_VMS = 1_000, 20_000


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def seed(db_url: str) -> list[str]:
    engine = make_engine(parse_db_url(db_url), pool_size=1)
    now = utcnow()
    server_ids = [str(uuid.uuid4()) for _ in range(N_SERVERS)]
    vm_ids = [str(uuid.uuid4()) for _ in range(N_VMS)]
    with engine.begin() as conn:
        conn.execute(
            insert(servers),
            [
                {
                    "id": sid,
                    "name": f"server{i:04d}",
                    "address": f"10.0.{i // 250}.{i % 250 + 1}",
                    "description": "",
                    "pool_id": None,
                    "state": "owned",
                    "agent_fingerprint": None,
                    "hardware": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, sid in enumerate(server_ids)
            ],
        )
        for start in range(0, N_VMS, 2000):
            conn.execute(
                insert(vms),
                [
                    {
                        "id": vid,
                        "name": f"vm{i:05d}",
                        "description": "benchmark guest",
                        "server_id": server_ids[i % N_SERVERS],
                        "pool_id": None,
                        "repository_id": None,
                        "domain_type": "pvh",
                        "vcpus": 1 + i % 4,
                        "memory_mib": 512 * (1 + i % 8),
                        "state": "running",
                        "ha": bool(i % 2),
                        "disks": [{"name": "root", "size_mib": 8192}],
                        "nics": [{"network": "xenbr0"}],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, vid in enumerate(vm_ids[start : start + 2000], start)
                ],
            )
    engine.dispose()
    return vm_ids


def latency(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    times = []
    for path in paths:
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    times.sort()
    return {
        "p50": statistics.median(times),
        "p90": times[int(len(times) * 0.9)],
        "p99": times[int(len(times) * 0.99)],
        "n": len(times),
    }


def wrk(
    base: str, token: str, vm_ids: list[str], duration: int, connections: int, mix: str
) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    ids = ",".join(f'"{v}"' for v in random.sample(vm_ids, 2000))
    script.write_text(
        f"local ids = {{{ids}}}\n"
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  local mix = "{mix}"\n'
        '  if mix == "get" or (mix == "mixed" and n % 2 == 0) then\n'
        '    return wrk.format("GET", "/api/v1/vms/" .. ids[(n % #ids) + 1])\n'
        "  end\n"
        '  return wrk.format("GET", "/api/v1/vms?limit=100&offset=" .. ((n * 100) % 19900))\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("NON2XX %d\\n", summary.errors.status))\n'
        '  io.write(string.format("ERRORS %d\\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))\n'
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", out)
    non2xx = int(re.search(r"NON2XX (\d+)", out).group(1))  # type: ignore[union-attr]
    errors = int(re.search(r"ERRORS (\d+)", out).group(1))  # type: ignore[union-attr]
    p50_ms = (
        float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)] if p50 else float("nan")
    )
    return {"rps": rps, "p50_ms": p50_ms, "non2xx": non2xx, "errors": errors}


def ingest_rate(
    make_client, path: str, make_batch, batch_items: int, workers: int, duration: float
) -> dict[str, float]:
    deadline = time.monotonic() + duration

    def worker(seed_no: int) -> tuple[int, int]:
        sent = failures = 0
        with make_client() as c:
            n = 0
            while time.monotonic() < deadline:
                r = c.post(path, json=make_batch(seed_no, n))
                n += 1
                if r.status_code == 202:
                    sent += batch_items
                else:
                    failures += 1
        return sent, failures

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(worker, range(workers)))
    elapsed = time.monotonic() - t0
    return {
        "per_s": sum(r[0] for r in results) / elapsed,
        "failures": sum(r[1] for r in results),
        "seconds": elapsed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=20, help="seconds per throughput run")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk (tools/setup.sh installs it)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-manager-"))
    inst = dbserver.MariaDBInstance(work / "db", dbserver.free_tcp_port())
    log("starting MariaDB")
    db = dbserver.start(inst)
    manager = None
    try:
        dbserver.create_database(inst, "bench", "bench", "bench-pw")
        db_url = inst.url("bench", "bench-pw", "bench", via_socket=True)
        (work / "pw").write_text("bench-admin-pw\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "appliance",
                "manager",
                "init",
                "--state-dir",
                str(work / "m"),
                "--db-url",
                db_url,
                "--admin-password-file",
                str(work / "pw"),
            ],
            check=True,
        )
        log(f"seeding {N_SERVERS} servers and {N_VMS} VMs")
        vm_ids = seed(db_url)
        port = dbserver.free_tcp_port()
        manager = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "manager",
                "serve",
                "--state-dir",
                str(work / "m"),
                "--listen",
                f"127.0.0.1:{port}",
            ]
        )
        base = f"https://127.0.0.1:{port}"
        ctx = ssl.create_default_context(cafile=str(work / "m" / "tls" / "ca.crt"))
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/v1/health", verify=ctx).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/v1/sessions", json={"username": "admin", "password": "bench-admin-pw"}, verify=ctx
        ).json()["token"]
        headers = {"authorization": f"Bearer {token}"}

        def client() -> httpx.Client:
            return httpx.Client(base_url=f"{base}/api/v1", verify=ctx, headers=headers, timeout=60)

        with client() as c:
            assert c.get("/vms", params={"limit": 1}).json()["total"] == N_VMS
            log("latency: GET /vms (page of 100), one keep-alive client")
            lat_list = latency(
                c, [f"/vms?limit=100&offset={random.randrange(0, N_VMS - 100)}" for _ in range(400)]
            )
            log("latency: GET /vms/{id}, one keep-alive client")
            lat_get = latency(c, [f"/vms/{random.choice(vm_ids)}" for _ in range(1000)])
        log(f"throughput: wrk, 32 connections, {args.duration} s each: single VMs, pages of 100, mixed")
        thr = wrk(base, token, vm_ids, args.duration, 32, "get")
        thr_list = wrk(base, token, vm_ids, args.duration, 32, "list")
        thr_mixed = wrk(base, token, vm_ids, args.duration, 32, "mixed")

        now = time.time()
        ids = random.sample(vm_ids, 500)

        def sample_batch(worker: int, n: int) -> dict[str, object]:
            t = now + worker * 1e6 + n
            return {
                "samples": [
                    {
                        "object_type": "vm",
                        "object_id": ids[i % 500],
                        "metric": f"m{i // 500}",
                        "time": t,
                        "value": float(i),
                    }
                    for i in range(1000)
                ]
            }

        log(f"statistics ingest: batches of 1,000 samples, 4 clients, {args.duration} s")
        stats = ingest_rate(client, "/statistics/ingest", sample_batch, 1000, 4, args.duration)

        def event_batch(worker: int, n: int) -> dict[str, object]:
            return {
                "events": [
                    {
                        "id": f"{worker}-{n}-{i}",
                        "time": now,
                        "severity": "info",
                        "type": "vm.heartbeat",
                        "object_type": "vm",
                        "object_id": ids[i % 500],
                        "message": "bench",
                    }
                    for i in range(100)
                ]
            }

        log(f"event writes: batches of 100 events, 4 clients, {args.duration} s")
        ev = ingest_rate(client, "/events/ingest", event_batch, 100, 4, args.duration)

        def single_event(worker: int, n: int) -> dict[str, object]:
            return {
                "events": [
                    {
                        "id": f"s{worker}-{n}",
                        "time": now,
                        "severity": "info",
                        "type": "vm.heartbeat",
                        "object_type": "vm",
                        "object_id": ids[n % 500],
                        "message": "bench",
                    }
                ]
            }

        log(f"event writes: one event per request, 16 clients, {args.duration} s")
        ev1 = ingest_rate(client, "/events/ingest", single_event, 1, 16, args.duration)
    finally:
        if manager:
            manager.terminate()
            manager.wait(30)
        dbserver.stop(db)
        shutil.rmtree(work, ignore_errors=True)

    def ok(value: float, goal: float, higher: bool = True) -> str:
        return "meets" if (value >= goal if higher else value <= goal) else "MISSES"

    body = f"""
Measured {time.strftime("%Y-%m-%d")} by `bench/manager_api.py --duration {args.duration}` on {os.cpu_count()} cores
({platform.processor() or platform.machine()}), Python {platform.python_version()}. One `appliance manager serve`
process (uvicorn, HTTPS with TLS 1.3, bearer token auth) on a private MariaDB 10.11 holding {N_SERVERS:,} servers and
{N_VMS:,} VMs; the clients run on the same two cores. Latency: one Python httpx client with keep-alive, sequential
requests, client-side wall time. Throughput: `wrk -t2 -c32` (keep-alive) on `GET /vms/{{id}}`, on
`GET /vms?limit=100&offset=…`, and on both alternating. Ingest: Python httpx clients posting batches for {args.duration} s.

| figure | goal | measured | |
|---|---|---|---|
| `GET /vms` page of 100, p50 | <= 20 ms | {lat_list["p50"]:.1f} ms (p90 {lat_list["p90"]:.1f}, p99 {lat_list["p99"]:.1f}; n={lat_list["n"]}) | {ok(lat_list["p50"], 20, False)} |
| `GET /vms/{{id}}`, p50 | <= 5 ms | {lat_get["p50"]:.1f} ms (p90 {lat_get["p90"]:.1f}, p99 {lat_get["p99"]:.1f}; n={lat_get["n"]}) | {ok(lat_get["p50"], 5, False)} |
| requests/s at 32 concurrent clients, `GET /vms/{{id}}` | >= 500, no errors | {thr["rps"]:.0f} req/s, p50 {thr["p50_ms"]:.1f} ms, {thr["non2xx"]} non-2xx, {thr["errors"]} socket errors | {ok(thr["rps"], 500) if thr["non2xx"] + thr["errors"] == 0 else "MISSES"} |
| requests/s at 32 concurrent clients, `GET /vms` pages of 100 | (for reference) | {thr_list["rps"]:.0f} req/s, p50 {thr_list["p50_ms"]:.1f} ms, {thr_list["non2xx"]} non-2xx, {thr_list["errors"]} socket errors | |
| requests/s at 32 concurrent clients, half pages, half single VMs | (for reference) | {thr_mixed["rps"]:.0f} req/s, p50 {thr_mixed["p50_ms"]:.1f} ms, {thr_mixed["non2xx"]} non-2xx, {thr_mixed["errors"]} socket errors | |
| statistics ingest (batches of 1,000, 4 clients) | >= 5,000 samples/s | {stats["per_s"]:,.0f} samples/s, {stats["failures"]} failed posts | {ok(stats["per_s"], 5000)} |
| event writes (batches of 100, 4 clients) | >= 1,000 events/s | {ev["per_s"]:,.0f} events/s, {ev["failures"]} failed posts | {ok(ev["per_s"], 1000)} |
| event writes (1 event per request, 16 clients) | (for reference) | {ev1["per_s"]:,.0f} events/s, {ev1["failures"]} failed posts | |
"""
    busy = subprocess.run(["pgrep", "-c", "qemu-system"], capture_output=True, text=True).stdout.strip()
    if busy not in ("", "0"):
        body += f"\nNote: {busy} QEMU process(es) of other work were running on the same two cores during this run.\n"
    print(body)
    write_section("Manager WS-API", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
