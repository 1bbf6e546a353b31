"""Reading the encryption posture of a large inventory over a network: `vcrypt audit` vs naive reads.

Target: the pinned current vcsim (govmomi v0.56.0), one per VM count (`-vm N` with the launcher's
one cluster / one root pool gives exactly N VMs; `-autostart=false` so they can be reconfigured).
The estate is made mixed before timing, on a direct connection: every VM gets `--disks` disks
(vcsim makes one; the others are added by one ReconfigVM_Task per VM) and every `--encrypt-every`-th
VM is encrypted in the same reconfigure (home and every disk, on a key from vcsim's own
GenerateKey: v0.56.0 models VM and disk crypto, so this is cheap and needs no KMS). The fake
vCenter is not used: it has no network endpoint for the proxy to sit in front of.

Every read goes through `latency_proxy.LatencyProxy` (loopback; TLS bytes untouched): at
`--latency-ms L` each request and each response is held L ms, so every round trip costs 2L more
(the proxy counts round trips as request turns, and bytes each way). Contenders, alternated:

  per-VM reads   what a naive script does: a container view's `view`, then per VM `vm.name`,
                 `vm.config.keyId`, `vm.config.hardware.device`, `runtime.powerState` (4 round trips
                 a VM). Over many VMs this is slow, so it reads a SAMPLE of `--per-vm-sample` VMs
                 and extrapolates time, round trips and bytes to all N (said so in the output).
  raw RPEx       one hand-written container view + RetrievePropertiesEx without maxObjects (the
                 audit's VM paths), continued if the server pages anyway.
  vcrypt audit   harness.commands.audit.run_audit: every section (VMs paged by --page-size, hosts, key
                 providers, alarms, roles), audit.json/html + manifest written.

Also: the audit's peak Python memory (tracemalloc, one untimed run per N at 0 ms) and the
process's peak RSS; `--profile` prints the top of a cProfile of one audit at the largest N.
Goals (issue 17): audit >= 20x faster than per-VM reads at 5 ms; audit <= 3x one raw retrieval at
every latency; audit round trips independent of N; 10,000 VMs audited < 30 s at 5 ms.

    python bench/inventory_reads.py [--vms 2000,10000] [--latency-ms 0,2,5,20] [--reps 1] [--quick]
"""
from __future__ import annotations

import cProfile
import io
import pstats
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import _common as C

C.quiet()

from pyVmomi import vim, vmodl  # noqa: E402

from harness.targets.connect import connect_soap  # noqa: E402
from harness.inventory.schema import load_inventory  # noqa: E402
from harness.vcsim.build import VcsimUnavailable  # noqa: E402
from harness.vcsim.choice import find_vcsim  # noqa: E402
from harness.vcsim.process import VcsimProcess  # noqa: E402
from harness.vsphere.posture import VM_PATHS  # noqa: E402
from harness.vsphere.props import PAGE  # noqa: E402
from latency_proxy import LatencyProxy  # noqa: E402

PC = vmodl.query.PropertyCollector
PATHS = list(VM_PATHS)
PROVIDER = "bench-kp"
BATCH = 200          # reconfigure tasks in flight at once while making the estate


# ---- the estate ------------------------------------------------------------------------------
def make_estate(si: Any, disks: int, encrypt_every: int) -> dict[str, int]:
    """Give every VM `disks` disks and encrypt every `encrypt_every`-th (0: none); returns the counts."""
    content = si.RetrieveContent()
    crypto_manager = content.cryptoManager
    provider = vim.encryption.KeyProviderId(id=PROVIDER)
    crypto_manager.RegisterKmipServer(server=vim.encryption.KmipServerSpec(
        clusterId=provider, info=vim.encryption.KmipServerInfo(name="bench", address="127.0.0.1", port=5696)))
    crypto_manager.MarkDefault(clusterId=provider)
    key = crypto_manager.GenerateKey(keyProvider=provider).keyId
    devices = _all_devices(content)
    encrypted, failed, pending = 0, 0, []
    began = time.perf_counter()
    for index, (vm, vm_devices) in enumerate(devices):
        disk = next(d for d in vm_devices if isinstance(d, vim.vm.device.VirtualDisk))
        encrypt = bool(encrypt_every) and index % encrypt_every == 0
        pending.append(vm.ReconfigVM_Task(spec=_estate_spec(disk, disks, key if encrypt else None)))
        encrypted += encrypt
        if len(pending) >= BATCH or index == len(devices) - 1:
            failed += _wait_all(content, pending)
            pending = []
            print(f"    estate: {index + 1}/{len(devices)} VMs reconfigured ({time.perf_counter() - began:.0f} s, "
                  f"{failed} failed)", flush=True)
    return {"vms": len(devices), "encrypted": encrypted, "disks_per_vm": disks, "failed": failed}


def _wait_all(content: Any, tasks: list[Any]) -> int:
    """Wait until every task has finished (polling their info.state in one call); returns how many failed."""
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=t) for t in tasks],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])])
    while True:
        states = [o.propSet[0].val for o in content.propertyCollector.RetrieveContents([spec])]
        if all(state in ("success", "error") for state in states):
            return sum(state == "error" for state in states)
        time.sleep(0.2)


def _all_devices(content: Any) -> list[tuple[Any, list[Any]]]:
    """Every VM with its device list, in one retrieval (moId order)."""
    objects = _raw_objects(content, ["config.hardware.device"])
    return sorted(((o.obj, o.propSet[0].val if o.propSet else []) for o in objects), key=lambda p: p[0]._moId)


def _estate_spec(disk: Any, disks: int, key: Any) -> Any:
    """Add `disks - 1` disks beside the VM's own; with a key, encrypt home and every disk in the same reconfigure."""
    controller, unit = disk.controllerKey, disk.unitNumber
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key) if key is not None else None
    changes = []
    for extra in range(disks - 1):
        name = disk.backing.fileName.replace(".vmdk", f"_bench{extra + 1}.vmdk")   # vcsim's default name is taken
        new = vim.vm.device.VirtualDisk(key=-100 - extra, controllerKey=controller, unitNumber=unit + 1 + extra,
                                        capacityInKB=1024, backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                                            diskMode="persistent", fileName=name))
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=new))
    if crypto is not None:
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk))
        for change in changes:
            change.backing = vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto)
    return vim.vm.ConfigSpec(crypto=crypto, deviceChange=changes)


# ---- contenders ------------------------------------------------------------------------------
def _power_state(content: Any, vm: Any) -> Any:
    """`runtime.powerState` with a one-object RetrievePropertiesEx (a current vcsim's whole
    `runtime` does not parse in pyVmomi 9): one round trip, as `vm.runtime.powerState` would be."""
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
    return content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())


def vm_list(content: Any) -> list[Any]:
    """The VMs as a naive script lists them: a container view's `view` (read once, before timing)."""
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def per_vm(content: Any, machines: list[Any]) -> int:
    """The naive reads of each VM in `machines`: 4 round trips a VM."""
    for vm in machines:
        _ = (vm.name, vm.config.keyId, vm.config.hardware.device, _power_state(content, vm))
    return len(machines)


def _raw_objects(content: Any, paths: list[str]) -> list[Any]:
    """One hand-written container view + RetrievePropertiesEx (no maxObjects), continued if paged."""
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
        return objects
    finally:
        view.DestroyView()


def raw_rpex(content: Any, paths: list[str] = PATHS) -> int:
    return len(_raw_objects(content, paths))


class Measured:
    """Runs a contender, measuring time, API calls (stub) and TCP round trips and bytes (proxy)."""

    def __init__(self, calls: C.RoundTrips, proxy: LatencyProxy) -> None:
        self.calls, self.proxy = calls, proxy

    def __call__(self, fn: Callable[[], int], scale: float = 1.0) -> Callable[[], dict[str, float]]:
        def go() -> dict[str, float]:
            calls0, net0 = self.calls.count, self.proxy.stats.snapshot()
            with C.Timer() as t:
                read = fn()
            net1 = self.proxy.stats.snapshot()
            return {"s": t.s * scale, "calls": (self.calls.count - calls0) * scale,
                    "round_trips": (net1["round_trips"] - net0["round_trips"]) * scale,
                    "bytes_down": (net1["bytes_down"] - net0["bytes_down"]) * scale,
                    "bytes_up": (net1["bytes_up"] - net0["bytes_up"]) * scale, "read": read, "scale": scale}
        return go


def audit_peak_memory(run: Callable[[], Any]) -> tuple[float, float]:
    """(peak traced Python memory MiB during one audit, its wall time under tracemalloc)."""
    tracemalloc.start()
    try:
        began = time.perf_counter()
        run()
        took = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, took


def profile_top(run: Callable[[], Any], entries: int = 20) -> str:
    prof = cProfile.Profile()
    prof.runcall(run)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(entries)
    stats.sort_stats("cumulative").print_stats(entries)
    return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


# ---- one VM count ----------------------------------------------------------------------------
def bench_count(count: int, args: Any, binary: Path, report: C.Report, tmp: Path, audit: Any,
                results: dict[tuple[int, float], dict[str, list[dict[str, float]]]]) -> None:
    inv = load_inventory(C.vcsim_inventory())
    entry = inv.vcenters[0]
    began = time.perf_counter()
    with VcsimProcess(tmp / f"vcsim-{count}", binary=binary, api_version="7.0.3.0", vms=count,
                      extra_args=["-autostart=false"], ready_timeout=1800) as sim:
        report.figure(f"vcsim_start_s[{count}]", round(time.perf_counter() - began, 2),
                      f"{time.perf_counter() - began:.1f} s to start a vcsim with -vm {count}")
        direct = connect_soap(entry, url=sim.url)
        with C.Timer() as t:
            estate = make_estate(direct, args.disks, args.encrypt_every)
        report.figure(f"estate[{count}]", estate, f"{estate['vms']} VMs, {estate['encrypted']} encrypted (home and "
                      f"every disk), {estate['disks_per_vm']} disks each, {estate['failed']} reconfigures failed; made in "
                      f"{t.s:.1f} s (vcsim v0.56.0)")
        _logout(direct)
        port = int(sim.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        with LatencyProxy("127.0.0.1", port) as proxy:
            url = sim.url.replace(f":{port}/", f":{proxy.port}/")
            si = connect_soap(entry, url=url)
            content = si.RetrieveContent()
            calls = C.RoundTrips(si._stub)
            measure = Measured(calls, proxy)
            from harness.targets.environment import Environment
            env = Environment(inv.model_copy(update={"vcenters": [entry]}), tmp / f"env-{count}")
            env._sis[entry.name] = si   # the same (counted, proxied) connection; nothing is started
            reports = tmp / f"reports-{count}"

            def run_audit() -> int:
                return audit.run_audit(env, entry.name, reports, page_size=args.page_size) \
                    .report["vcenters"][0]["vms"]["total"]

            sample = min(args.per_vm_sample, count)
            machines = vm_list(content)
            picked = machines[::max(1, len(machines) // sample)][:sample]   # spread: plain and encrypted VMs
            contenders = {
                "per-VM reads": measure(lambda: per_vm(content, picked), scale=count / len(picked)),
                "raw RetrievePropertiesEx": measure(lambda: raw_rpex(content)),
                "vcrypt audit": measure(run_audit),
            }
            extras = args.full or count <= 2000   # a 10,000-VM retrieval takes minutes on a loaded machine
            if args.profile and count == max(args.vm_counts):   # also warms up what the audit uses
                print(f"\n-- cProfile of one audit of {count} VMs at 0 ms (top by own time, then cumulative)")
                print(profile_top(run_audit))
            if extras:
                for fn in contenders.values():   # warm-up at 0 ms (pyVmomi type caches, vcsim's first view)
                    fn()
                device_free = measure(lambda: raw_rpex(content, [p for p in PATHS if "device" not in p]))()
                whole = measure(lambda: raw_rpex(content))()
                report.figure(f"device_share[{count}]", round(1 - device_free["s"] / whole["s"], 3),
                              f"{(1 - device_free['s'] / whole['s']) * 100:.0f}% of one raw retrieval at 0 ms is "
                              f"config.hardware.device ({device_free['s']:.2f} s without it, {whole['s']:.2f} s "
                              f"with; {whole['bytes_down'] / 2**20:.1f} MiB vs {device_free['bytes_down'] / 2**20:.1f}"
                              f" MiB down)")
                peak, traced_s = audit_peak_memory(run_audit)
                report.figure(f"audit_peak_mib[{count}]", round(peak, 1),
                              f"{peak:.1f} MiB peak Python memory in one audit of {count} VMs (tracemalloc; "
                              f"{traced_s:.1f} s under tracing)")
            else:
                report.note(f"{count} VMs: no separate warm-up, device share or tracemalloc run (--full for them); "
                            "memory is the process's peak RSS after the timed runs")
            for latency in args.latencies:
                proxy.set_delays(latency / 1000, latency / 1000)
                runs = C.alternate(contenders, args.reps)
                results[(count, latency)] = runs
                _print_cell(count, latency, runs, sample)
            proxy.set_delays(0, 0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            report.figure(f"peak_rss_mib[{count}]", round(rss), f"{rss:.0f} MiB peak RSS of this process after the "
                          f"{count}-VM runs (bench, pyVmomi, every contender's results; vcsim not included)")
            calls.remove()
            _logout(si)


def _logout(si: Any) -> None:
    try:
        si.content.sessionManager.Logout()
    except Exception:  # noqa: BLE001
        pass


def _median(runs: list[dict[str, float]], key: str) -> float:
    return C.median(r[key] for r in runs)


def _print_cell(count: int, latency: float, runs: dict[str, list[dict[str, float]]], sample: int) -> None:
    print(f"\n{count} VMs, latency {latency:g} ms each way ({2 * latency:g} ms more per round trip), "
          f"{len(runs['vcrypt audit'])} rep(s), order rotated")
    print(f"  {'method':26} {'median':>10} {'API calls':>10} {'round trips':>12} {'MiB down':>9} {'MiB up':>8}")
    for name, samples in runs.items():
        print(f"  {name:26} {_median(samples, 's'):8.2f} s {_median(samples, 'calls'):10.0f} "
              f"{_median(samples, 'round_trips'):12.0f} {_median(samples, 'bytes_down') / 2**20:9.2f} "
              f"{_median(samples, 'bytes_up') / 2**20:8.2f}")
    print(f"  (per-VM reads: {sample} VMs read, figures extrapolated x{count / sample:g} to {count} VMs; "
          f"the view listing the VMs, read once before timing, is not counted)")


def _parse_list(text: str, kind: type) -> list[Any]:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: not a comma-separated list of numbers: {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise SystemExit(f"error: expected non-negative numbers: {text!r}")
    return values


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--vms", default="2000,10000", help="VM counts, comma-separated (default 2000,10000)")
    p.add_argument("--latency-ms", default="0,2,5,20", help="delay per request and per response (default 0,2,5,20)")
    p.add_argument("--reps", type=int, default=1, help="repetitions per method and latency (default 1)")
    p.add_argument("--per-vm-sample", type=int, default=100, help="VMs the per-VM leg reads (extrapolated; default 100)")
    p.add_argument("--disks", type=int, default=3, help="disks per VM (default 3)")
    p.add_argument("--encrypt-every", type=int, default=2, help="encrypt every k-th VM (default 2: half; 0 none)")
    p.add_argument("--page-size", type=int, default=PAGE, help=f"the audit's page size (maxObjects, default {PAGE})")
    p.add_argument("--profile", action="store_true", help="cProfile one audit at the largest VM count, print the top")
    p.add_argument("--full", action="store_true", help="warm-up, device share and tracemalloc runs above 2,000 VMs too")
    args = p.parse_args()
    args.vm_counts = [20] if args.quick else _parse_list(args.vms, int)
    args.latencies = [0.0, 5.0] if args.quick else _parse_list(args.latency_ms, float)
    if args.quick:
        args.reps, args.per_vm_sample = 1, min(args.per_vm_sample, 5)
    if args.reps < 1 or args.per_vm_sample < 1 or args.disks < 1 or args.page_size < 1 or args.encrypt_every < 0:
        raise SystemExit("error: --reps, --per-vm-sample, --disks and --page-size must be >= 1, --encrypt-every >= 0")
    C.header("inventory_reads: vcrypt audit vs per-VM reads vs one raw RetrievePropertiesEx, over a latency proxy",
             vms=args.vm_counts, latency_ms=args.latencies, reps=args.reps, per_vm_sample=args.per_vm_sample,
             disks=args.disks, encrypt_every=args.encrypt_every, page_size=args.page_size)
    report = C.Report("inventory_reads")
    try:
        binary = find_vcsim()
    except VcsimUnavailable as err:
        report.note(f"no vcsim: {err}")
        report.finish(args.json)
        return
    import harness.commands.audit as audit
    results: dict[tuple[int, float], dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="vcrypt-bench-reads-") as tmp:
        for count in args.vm_counts:
            bench_count(count, args, binary, report, Path(tmp), audit, results)
    C.check_no_children()
    _figures_and_ratios(args, results, report)
    report.finish(args.json)


def _figures_and_ratios(args: Any, results: dict[tuple[int, float], dict[str, list[dict[str, float]]]],
                        report: C.Report) -> None:
    print(f"\nsummary (target: vcsim v0.56.0 through the latency proxy; per-VM reads sampled "
          f"{args.per_vm_sample} VMs and extrapolated)")
    print(f"  {'VMs':>6} {'ms':>4} {'audit s':>8} {'raw s':>7} {'per-VM s':>9} {'audit RT':>9} {'raw RT':>7} "
          f"{'per-VM RT':>10} {'audit/raw':>10} {'perVM/audit':>12}")
    for (count, latency), runs in results.items():
        aud, raw, naive = (_median(runs[n], "s") for n in ("vcrypt audit", "raw RetrievePropertiesEx", "per-VM reads"))
        trips = [_median(runs[n], "round_trips") for n in ("vcrypt audit", "raw RetrievePropertiesEx", "per-VM reads")]
        print(f"  {count:6} {latency:4g} {aud:8.2f} {raw:7.2f} {naive:9.1f} {trips[0]:9.0f} {trips[1]:7.0f} "
              f"{trips[2]:10.0f} {aud / raw:10.2f} {naive / aud:12.1f}")
        report.figures[f"{count}vms_{latency:g}ms"] = {
            n: {k: round(_median(runs[n], k), 4) for k in ("s", "calls", "round_trips", "bytes_down", "bytes_up")}
            for n in runs}
    for (count, latency), runs in results.items():
        aud, raw = _median(runs["vcrypt audit"], "s"), _median(runs["raw RetrievePropertiesEx"], "s")
        report.ratio(f"audit / raw RetrievePropertiesEx, {count} VMs, {latency:g} ms", aud / raw, "<= 3", aud / raw <= 3)
    for (count, latency), runs in results.items():
        aud, naive = _median(runs["vcrypt audit"], "s"), _median(runs["per-VM reads"], "s")
        if latency == 5:
            report.ratio(f"per-VM reads (extrapolated) / audit, {count} VMs, 5 ms", naive / aud, ">= 20",
                         naive / aud >= 20)
        else:
            report.ratio(f"per-VM reads (extrapolated) / audit, {count} VMs, {latency:g} ms", naive / aud)
    counts = sorted({c for c, _ in results})
    if len(counts) > 1:
        low, high = counts[0], counts[-1]
        latency = next(iter(l for c, l in results if c == low))
        trips_low = _median(results[(low, latency)]["vcrypt audit"], "calls")
        trips_high = _median(results[(high, latency)]["vcrypt audit"], "calls")
        report.ratio(f"audit API calls {high} VMs / {low} VMs", trips_high / trips_low, "== 1",
                     trips_high == trips_low,
                     f"{trips_high:.0f} vs {trips_low:.0f}: +1 ContinueRetrievePropertiesEx per {args.page_size} VMs")
    for (count, latency), runs in results.items():
        if count >= 10000 and latency == 5:
            aud = _median(runs["vcrypt audit"], "s")
            report.ratio(f"audit of {count} VMs at 5 ms / 30 s", aud / 30, "<= 1", aud <= 30,
                         f"{aud:.1f} s on this machine")


if __name__ == "__main__":
    main()
