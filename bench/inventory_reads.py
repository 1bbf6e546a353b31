"""Reading the encryption state of every VM of a large inventory: round trips and time.

A vcsim with N VMs (default 2,000: `-vm` is per resource pool in vcsim, and the launcher makes one
cluster with one root pool and no standalone host, so `-vm N` gives N VMs) is read four ways,
alternated on one connection:

  per-VM reads      as naive scripts do it: a container view's `view`, then for every VM
                    `vm.name`, `vm.config.keyId`, `vm.config.hardware.device`, `vm.runtime.powerState`
                    (each attribute is a round trip: pyVmomi fetches the whole `config`/`runtime`)
  retrieve_all      harness.vsphere.props.retrieve_all: a container view + paged RetrievePropertiesEx
                    (500 objects a page) with explicit property paths
  raw RPEx          one hand-written container view + RetrievePropertiesEx (no maxObjects; continued
                    if vcsim pages anyway) with the same paths
  vcrypt audit      harness.audit.run_audit on the same vcsim (every section: VMs, hosts, key
                    providers, alarms, roles; writes audit.json/html + manifest), if harness.audit exists

Round trips are counted by wrapping the stub's InvokeMethod (accessors are `Fetch` calls through it).
Goals: the audit within 3x of the raw retrieval, and at least 20x faster than per-VM reads.

    python bench/inventory_reads.py [--vms 2000] [--reps 3] [--quick]
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

C.quiet()

from pyVmomi import vim, vmodl  # noqa: E402

from harness.connect import connect_soap  # noqa: E402
from harness.inventory import load_inventory  # noqa: E402
from harness.vcsim.build import VcsimUnavailable, find_vcsim  # noqa: E402
from harness.vcsim.process import VcsimProcess  # noqa: E402
from harness.vsphere import props  # noqa: E402
from harness.safety import MutationGate  # noqa: E402
from harness.vsphere.client import VCenterClient  # noqa: E402

BENCH_GATE = MutationGate(allow_mutations=True)  # benches build and change their own throwaway fakes/vcsims

PC = vmodl.query.PropertyCollector
PATHS = ["name", "config.keyId", "config.hardware.device", "config.migrateEncryption", "runtime.cryptoState",
         "runtime.powerState", "config.template"]


def _power_state(content: Any, vm: Any) -> Any:
    """`vm.runtime.powerState`, or (a current vcsim's whole `runtime` does not parse in pyVmomi 9) the
    same one round trip as a one-path RetrievePropertiesEx."""
    try:
        return vm.runtime.powerState
    except AttributeError:
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                             propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
        return content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())


def per_vm(content: Any) -> int:
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        seen = 0
        for vm in view.view:
            _ = (vm.name, vm.config.keyId, vm.config.hardware.device, _power_state(content, vm))
            seen += 1
        return seen
    finally:
        view.DestroyView()


def raw_rpex(content: Any, paths: list[str] = PATHS) -> int:
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])
        pc = content.propertyCollector
        result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        objects = list(result.objects or []) if result else []
        while result is not None and result.token:
            result = pc.ContinueRetrievePropertiesEx(result.token)
            objects.extend(result.objects or [])
        return len(objects)
    finally:
        view.DestroyView()


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--vms", type=int, default=2000, help="VMs in the vcsim (default 2000)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per method (default 3)")
    args = p.parse_args()
    vms = min(args.vms, 20) if args.quick else args.vms
    reps = 1 if args.quick else args.reps
    C.header("inventory_reads: per-VM reads vs PropertyCollector retrievals vs vcrypt audit (vcsim)",
             vms=vms, reps=reps)
    report = C.Report("inventory_reads")
    try:
        binary = find_vcsim()
    except VcsimUnavailable as err:
        report.note(f"no vcsim: {err}")
        report.finish(args.json)
        return
    try:
        import harness.audit as audit
    except ImportError as err:
        audit = None
        report.note(f"harness.audit not importable ({err}): the audit figure is pending")

    inv = load_inventory(C.vcsim_inventory())
    entry = inv.vcenters[0]
    with tempfile.TemporaryDirectory(prefix="vcrypt-bench-reads-") as tmp:
        began = time.perf_counter()
        with VcsimProcess(Path(tmp) / "vcsim", binary=binary, api_version="7.0.3.0", vms=vms,
                          ready_timeout=600) as sim:
            ready = time.perf_counter() - began
            report.figure("vcsim_start_s", round(ready, 3), f"{ready:.2f} s to start a vcsim with -vm {vms} "
                                                             "(spawn until its SOAP endpoint answers)")
            si = connect_soap(entry, url=sim.url)
            content = si.RetrieveContent()
            client = VCenterClient(entry.name, si, inv.timeouts, "vcsim", gate=BENCH_GATE)
            counter = C.RoundTrips(si._stub)
            count = len(props.retrieve_all(client, vim.VirtualMachine, ["name"]))
            report.figure("vms_in_vcsim", count)

            env = None
            if audit is not None:
                from harness.environment import Environment
                env = Environment(inv.model_copy(update={"vcenters": [entry]}), Path(tmp) / "env")
                env._sis[entry.name] = si   # the same (counted) connection; nothing is started
                reports = Path(tmp) / "reports"

            def run(fn: Any) -> Any:
                def go() -> tuple[float, int, int]:
                    trips0 = counter.count
                    with C.Timer() as t:
                        n = fn()
                    return t.s, counter.count - trips0, n
                return go

            contenders = {
                "per-VM reads": run(lambda: per_vm(content)),
                "retrieve_all": run(lambda: len(props.retrieve_all(client, vim.VirtualMachine, PATHS))),
                "raw RetrievePropertiesEx": run(lambda: raw_rpex(content)),
                "raw RPEx without devices": run(lambda: raw_rpex(content, [p for p in PATHS if "device" not in p])),
            }
            if env is not None:
                contenders["vcrypt audit"] = run(lambda: audit.run_audit(env, entry.name, reports)
                                                 .report["vcenters"][0]["vms"]["total"])
            for name, fn in contenders.items():  # warm-up (pyVmomi type caches, vcsim's first view)
                if name != "per-VM reads" or vms <= 200:
                    fn()
            results = C.alternate(contenders, reps)
            counter.remove()
            trips = []
            for _ in range(50 if args.quick else 300):  # the cost of one small round trip on this connection
                with C.Timer() as t:
                    si.CurrentTime()
                trips.append(t.s)
            rtt = C.median(trips)
            report.figure("round_trip_s", round(rtt, 6), f"{rtt * 1000:.3f} ms median for one small round trip "
                                                          "(ServiceInstance.CurrentTime, HTTPS on loopback)")
            try:
                si.content.sessionManager.Logout()
            except Exception:  # noqa: BLE001
                pass
    C.check_no_children()

    print(f"\n{count} VMs, {reps} repetitions per method, order rotated")
    print(f"  {'method':28} {'median':>11} {'round trips':>12} {'VMs read':>9}")
    medians = {}
    for name, samples in results.items():
        med = C.median(s[0] for s in samples)
        trips = C.median(s[1] for s in samples)
        medians[name] = med
        print(f"  {name:28} {med:9.3f} s {trips:12.0f} {samples[0][2]:9}")
        report.figures[name] = {"median_s": round(med, 4), "round_trips": trips, "vms": samples[0][2], "reps": len(samples)}
    raw = medians["raw RetrievePropertiesEx"]
    naive = medians["per-VM reads"]
    report.ratio("per-VM reads / raw RetrievePropertiesEx", naive / raw)
    report.ratio("retrieve_all / raw RetrievePropertiesEx", medians["retrieve_all"] / raw)
    if "vcrypt audit" in medians:
        aud = medians["vcrypt audit"]
        report.ratio("audit / raw RetrievePropertiesEx", aud / raw, "<= 3", aud / raw <= 3)
        report.ratio("per-VM reads / audit", naive / aud, ">= 20", naive / aud >= 20)
        trips_naive = C.median(s[1] for s in results["per-VM reads"])
        trips_audit = C.median(s[1] for s in results["vcrypt audit"])
        # At which round-trip cost would per-VM reads be 20x the audit? (naive + n*r) / (audit + a*r) = 20
        need = (20 * aud - naive) / (trips_naive - 20 * trips_audit) if trips_naive > 20 * trips_audit else float("inf")
        report.figure("rtt_for_20x_s", round(need, 6),
                      f"per-VM reads would be 20x the audit once a round trip costs {need * 1000:.2f} ms more than "
                      f"here (measured {rtt * 1000:.3f} ms on loopback); a vCenter across a network costs that")
        payload = medians["raw RPEx without devices"]
        report.figure("device_share", round(1 - payload / raw, 3),
                      f"{(1 - payload / raw) * 100:.0f}% of the raw retrieval is config.hardware.device "
                      f"({payload:.3f} s without it)")
    report.finish(args.json)


if __name__ == "__main__":
    main()
