"""`vcrypt audit` against govc and one raw pyVmomi retrieval: time and process-tree memory (issue 26.4).

Target: the pinned vcsim (govmomi v0.56.0), `-vm N`, made a mixed estate first on a direct connection
(`inventory_reads.make_estate`: `--disks` disks a VM, every `--encrypt-every`-th VM encrypted, home and
every disk). Every contender then runs as its own process through `latency_proxy.LatencyProxy` at
`--latency-ms` (each request and each response held that long), alternated, `--reps` times:

  govc          govmomi v0.56.0's govc (`govc_build.py`), collecting what the audit reports, one command
                after another as a script would: VM home and disk keys, crypto and power state
                (`object.collect -json -type m`), hosts (`-type h`), providers (`kms.ls`), triggered
                alarms (`alarms`), roles (`role.ls`) and permissions (`permissions.ls /`); its own
                session cache (GOVMOMI_HOME) lets the later commands skip the login. Time: the sequence.
  vcrypt audit  `python -m harness.cli audit` on an inventory whose vCenter URL is the proxy, with a
                placeholder shared KMS (the audit never connects to it, and no KMS process runs), `--parse-workers` (default 2) and `--page-size`.
  raw pyVmomi   one process: connect, a container view, RetrievePropertiesEx of the audit's VM paths
                without maxObjects (continued if the server pages), nothing else.

Memory: the peak of the summed RSS of the process and all its descendants, sampled every 10 ms
(`tree_memory.py`); for govc the largest command.
Results: the audit's VMs and every encrypted disk (audit.json) are compared with the raw retrieval's,
read straight from pyVmomi objects in that process (counts and a digest of (moid, home key, disk keys)).
Goals at 10,000 VMs and 5 ms: audit <= 1.5x govc's time, audit tree <= 100 MiB, results identical.

    python bench/audit_vs_govc.py [--vms 2000,10000] [--latency-ms 5] [--reps 1] [--quick]
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

C.quiet()

from harness.vcsim.build import VcsimUnavailable  # noqa: E402
from harness.commands.audit import AUDIT_PAGE as PAGE  # noqa: E402
from harness.vsphere.posture import VM_PATHS  # noqa: E402

import tree_memory  # noqa: E402

PYTHON = sys.executable


# ---- results, computed the same way from either side ---------------------------------------------
def digest(vms: list[tuple[str, Any, list[Any]]]) -> dict[str, Any]:
    """VM count, encrypted homes and disks, and a digest of (moid, home key, [disk keys]) in moid order."""
    rows = sorted((moid, home, sorted(disks, key=json.dumps)) for moid, home, disks in vms)
    return {"vms": len(rows), "encrypted_homes": sum(1 for _, h, _ in rows if h),
            "encrypted_disks": sum(1 for _, _, d in rows for k in d if k),
            "sha256": hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]}


def audit_digest(report_dir: Path) -> dict[str, Any]:
    report = json.loads(next(report_dir.glob("audit-*/audit.json")).read_text())
    items = report["vcenters"][0]["vms"]["items"]
    return digest([(v["moid"], v["key"], [d["key"] for d in v["disks"]]) for v in items])


def raw_child(url: str) -> None:
    """The raw leg, run as its own process: one retrieval, then (untimed) the digest of what it read."""
    from pyVim.connect import SmartConnect
    from pyVmomi import vim, vmodl
    pc_type = vmodl.query.PropertyCollector
    began = time.perf_counter()
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    si = SmartConnect(host=host, port=int(port), user="user", pwd="pass", disableSslCertValidation=True)
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = pc_type.FilterSpec(objectSet=[pc_type.ObjectSpec(obj=view, skip=True, selectSet=[
        pc_type.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[pc_type.PropertySpec(type=vim.VirtualMachine, pathSet=list(VM_PATHS))])
    pc = content.propertyCollector
    result = pc.RetrievePropertiesEx([spec], pc_type.RetrieveOptions())
    objects = list(result.objects or []) if result else []
    while result is not None and result.token:
        result = pc.ContinueRetrievePropertiesEx(result.token)
        objects.extend(result.objects or [])
    took = time.perf_counter() - began

    def key(k: Any) -> Any:
        return {"provider": k.providerId.id if k.providerId else "", "key": k.keyId} if k is not None else None
    rows = []
    for o in objects:
        props = {p.name: p.val for p in o.propSet or []}
        disks = [key(getattr(d.backing, "keyId", None)) for d in props.get("config.hardware.device") or []
                 if isinstance(d, vim.vm.device.VirtualDisk)]
        rows.append((o.obj._moId, key(props.get("config.keyId")), disks))
    print(json.dumps({"retrieval_s": took, **digest(rows)}))


# ---- contenders ------------------------------------------------------------------------------------
def govc_commands() -> list[list[str]]:
    return [["object.collect", "-json", "-type", "m", "/", *VM_PATHS],
            ["object.collect", "-json", "-type", "h", "/", "name", "runtime.cryptoState", "runtime.cryptoKeyId"],
            ["kms.ls", "-json"], ["alarms", "-json"], ["role.ls", "-json"], ["permissions.ls", "-json", "/"]]


def run_govc(govc: Path, url: str, tmp: Path) -> dict[str, Any]:
    env = dict(os.environ, GOVC_URL=url.replace("https://", "https://user:pass@"), GOVC_INSECURE="1",
               GOVMOMI_HOME=str(tmp / "govmomi-home"))
    total, peak, pss, most, out_bytes, failed = 0.0, 0.0, 0.0, 0, 0, []
    for args in govc_commands():
        out = tmp / "govc.out"
        with out.open("wb") as sink, (tmp / "govc.err").open("wb") as errors:
            run = tree_memory.run([str(govc), *args], env=env, stdout=sink, stderr=errors)
        total += run.seconds
        peak, pss, most = max(peak, run.peak_tree_mib), max(pss, run.peak_tree_pss_mib), max(most, run.most_processes)
        out_bytes += out.stat().st_size
        if run.returncode != 0:
            failed.append(f"{args[0]} exit {run.returncode}: {(tmp / 'govc.err').read_text()[-300:].strip()}")
    return {"s": total, "peak_mib": peak, "pss_mib": pss, "processes": most, "out_mib": out_bytes / 2**20,
            "failed": failed}


def run_audit(url: str, tmp: Path, args: Any, workers: int) -> dict[str, Any]:
    inventory = tmp / "audit-inventory.yaml"
    from harness.kms.pki import ThrowawayCA
    ca = ThrowawayCA(tmp / "ca")
    client = ca.issue_client("bench")
    inventory.write_text(f"""vcenters:
  - name: vc-a
    target: vcsim
    url: {url}
    user: user
    tls: {{insecure: true}}
    datacenter: DC0
    cluster: DC0_C0
    version: 7.0.3
kms:
  embedded: false
  shared: {{provider_id: bench-kp, address: 127.0.0.1, port: 1, ca: {ca.ca_path}, client_cert: {client.cert_path},
           client_key: {client.key_path}}}
""")
    reports = tmp / f"audit-reports-{time.monotonic_ns()}"
    run = tree_memory.run([PYTHON, "-m", "harness.cli", "audit", "--inventory", str(inventory), "--vcenter", "vc-a",
                           "--reports", str(reports), "--page-size", str(args.page_size),
                           "--parse-workers", str(workers)], cwd=C.REPO)
    result = {"s": run.seconds, "peak_mib": run.peak_tree_mib, "pss_mib": run.peak_tree_pss_mib,
              "processes": run.most_processes, "rc": run.returncode}
    if run.returncode in (0, 3):
        result["digest"] = audit_digest(reports)
    return result


def run_raw(url: str, tmp: Path) -> dict[str, Any]:
    out = tmp / "raw.json"
    with out.open("wb") as sink:
        run = tree_memory.run([PYTHON, str(Path(__file__).resolve()), "--raw-child", url], stdout=sink)
    result = {"s": run.seconds, "peak_mib": run.peak_tree_mib, "pss_mib": run.peak_tree_pss_mib,
              "processes": run.most_processes, "rc": run.returncode}
    if run.returncode == 0:
        answer = json.loads(out.read_text())
        result["retrieval_s"] = answer.pop("retrieval_s")
        result["digest"] = answer
    return result


# ---- one VM count ------------------------------------------------------------------------------------
def bench_count(count: int, args: Any, binary: Path, govc: Path, report: C.Report, tmp: Path) -> dict[float, Any]:
    from harness.inventory.schema import load_inventory
    from harness.targets.connect import connect_soap
    from harness.vcsim.process import VcsimProcess
    from inventory_reads import _logout, make_estate
    from latency_proxy import LatencyProxy
    entry = load_inventory(C.vcsim_inventory()).vcenters[0]
    cells: dict[float, Any] = {}
    with VcsimProcess(tmp / f"vcsim-{count}", binary=binary, api_version="7.0.3.0", vms=count,
                      extra_args=["-autostart=false"], ready_timeout=1800) as sim:
        direct = connect_soap(entry, url=sim.url)
        with C.Timer() as t:
            estate = make_estate(direct, args.disks, args.encrypt_every)
        _logout(direct)
        report.figure(f"estate[{count}]", estate, f"{estate['vms']} VMs, {estate['encrypted']} encrypted (home and "
                      f"every disk), {estate['disks_per_vm']} disks each, {estate['failed']} failed; {t.s:.0f} s")
        port = int(sim.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        with LatencyProxy("127.0.0.1", port) as proxy:
            url = sim.url.replace(f":{port}/", f":{proxy.port}/")
            for latency in args.latencies:
                proxy.set_delays(latency / 1000, latency / 1000)
                contenders = {"govc": lambda: run_govc(govc, url, tmp),
                              "vcrypt audit": lambda: run_audit(url, tmp, args, args.parse_workers),
                              "raw pyVmomi": lambda: run_raw(url, tmp)}
                if args.also_workers is not None:
                    contenders[f"audit, {args.also_workers} workers"] = \
                        lambda: run_audit(url, tmp, args, args.also_workers)
                load_before = C.load()
                runs = C.alternate(contenders, args.reps)
                cells[latency] = {"runs": runs, "load": f"{load_before} -> {C.load()}"}
                _print_cell(count, latency, runs, cells[latency]["load"], report)
    return cells


def _median(samples: list[dict[str, Any]], key: str) -> float:
    return C.median(s[key] for s in samples)


def _print_cell(count: int, latency: float, runs: dict[str, list[dict[str, Any]]], load: str, report: C.Report) -> None:
    print(f"\n{count} VMs, {latency:g} ms each way, {len(runs['govc'])} rep(s), load average {load}")
    print(f"  {'contender':22} {'median s':>9} {'peak RSS MiB (tree)':>20} {'peak PSS MiB':>13} {'processes':>10}")
    for name, samples in runs.items():
        print(f"  {name:22} {_median(samples, 's'):9.2f} {_median(samples, 'peak_mib'):20.1f} "
              f"{_median(samples, 'pss_mib'):13.1f} {samples[-1].get('processes', 1):10}")
    for name, samples in runs.items():
        if name != "govc":
            print(f"  results, {name}: {samples[-1].get('digest')} (exit {samples[-1]['rc']})")
    raw, govc_run = runs["raw pyVmomi"][-1], runs["govc"][-1]
    print(f"  raw retrieval itself {raw.get('retrieval_s', float('nan')):.2f} s; govc wrote {govc_run['out_mib']:.1f} MiB"
          f" of JSON, failures: {govc_run['failed'] or 'none'}")
    report.figures[f"{count}vms_{latency:g}ms"] = {"load": load, **{
        n: {"s": round(_median(s, "s"), 2), "peak_mib": round(_median(s, "peak_mib"), 1),
            "pss_mib": round(_median(s, "pss_mib"), 1)} for n, s in runs.items()}}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--raw-child":
        raw_child(sys.argv[2])
        return
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--vms", default="2000,10000", help="VM counts, comma-separated (default 2000,10000)")
    p.add_argument("--latency-ms", default="5", help="delay per request and per response, comma-separated (default 5)")
    p.add_argument("--reps", type=int, default=1, help="repetitions per contender (default 1)")
    p.add_argument("--disks", type=int, default=3, help="disks per VM (default 3)")
    p.add_argument("--encrypt-every", type=int, default=2, help="encrypt every k-th VM (default 2: half)")
    p.add_argument("--page-size", type=int, default=PAGE, help=f"the audit's page size (default {PAGE})")
    p.add_argument("--parse-workers", type=int, default=1, help="the audit's page workers (default 1, as vcrypt's)")
    p.add_argument("--also-workers", type=int, default=None,
                   help="also run the audit with this many page workers (a fourth contender)")
    args = p.parse_args()
    args.vm_counts = [20] if args.quick else [int(v) for v in args.vms.split(",")]
    args.latencies = [float(v) for v in args.latency_ms.split(",")]
    C.header("audit_vs_govc: vcrypt audit vs govc vs one raw pyVmomi retrieval, through the latency proxy",
             vms=args.vm_counts, latency_ms=args.latencies, reps=args.reps, disks=args.disks,
             encrypt_every=args.encrypt_every, page_size=args.page_size, parse_workers=args.parse_workers)
    report = C.Report("audit_vs_govc")
    try:
        from harness.vcsim.choice import find_vcsim
        from govc_build import build_govc
        binary, govc = find_vcsim(), build_govc()
    except VcsimUnavailable as err:
        report.note(f"no vcsim or govc: {err}")
        report.finish(args.json)
        return
    results: dict[int, dict[float, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vcrypt-bench-govc-") as tmp:
        for count in args.vm_counts:
            results[count] = bench_count(count, args, binary, govc, report, Path(tmp))
    C.check_no_children()
    for count, cells in results.items():
        for latency, cell in cells.items():
            runs = cell["runs"]
            audit, govc_s, raw = (_median(runs[n], "s") for n in ("vcrypt audit", "govc", "raw pyVmomi"))
            mem = _median(runs["vcrypt audit"], "peak_mib")
            goal = count >= 10000 and latency == 5
            report.ratio(f"audit / govc time, {count} VMs, {latency:g} ms", audit / govc_s, "<= 1.5" if goal else "",
                         audit / govc_s <= 1.5 if goal else None, f"{audit:.1f} s vs {govc_s:.1f} s, load {cell['load']}")
            report.ratio(f"audit / raw pyVmomi time, {count} VMs, {latency:g} ms", audit / raw, note=f"raw {raw:.1f} s")
            report.ratio(f"audit peak MiB (process tree), {count} VMs, {latency:g} ms", mem, "<= 100" if goal else "",
                         mem <= 100 if goal else None,
                         f"govc {_median(runs['govc'], 'peak_mib'):.0f} MiB, raw {_median(runs['raw pyVmomi'], 'peak_mib'):.0f} MiB")
            same = all(a.get("digest") is not None and a.get("digest") == r.get("digest")
                       for a, r in zip(runs["vcrypt audit"], runs["raw pyVmomi"]))
            report.ratio(f"audit results identical to the raw retrieval, {count} VMs, {latency:g} ms", float(same),
                         "== 1", same, "VMs, encrypted homes and every encrypted disk")
    report.finish(args.json)


if __name__ == "__main__":
    main()
