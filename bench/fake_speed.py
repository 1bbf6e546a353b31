"""The fake vCenter's own speed: one operation (no KMS round trip), and building 2,000 VMs.

Operations on an unencrypted VM of a fake built without key providers (so no KMIP is involved),
alternated, each measured as a single pyVmomi call through the fake's stub adapter (client-side
SOAP serialization, decode, the model's work, the response's round trip) — the fake's cost:

  property read           vm.name (a Fetch)
  PropertyCollector read  RetrievePropertiesEx of one VM, 3 paths
  power on / power off    PowerOnVM_Task / PowerOffVM_Task (the fake completes the task at once)
  reconfigure             ReconfigVM_Task with an annotation (no crypto)

and, for reference, the same operations through the harness (VCenterClient: evidence, the
event-driven wait of the task: CreateFilter + WaitForUpdatesEx + DestroyPropertyFilter).
The time inside `dispatch.invoke` (the model, under the world lock) is reported apart from
the stub's serialization.

Build: `FakeWorld().add_vcenter(VCenterSeed(..., vms=2000))` without providers, repeated.
Goals: a fake operation under 2 ms median; a 2,000-VM fake vCenter built in under 2 s.

    python bench/fake_speed.py [--vms 2000] [--reps 200] [--builds 3] [--quick]
"""
from __future__ import annotations

import gc
import time
from typing import Any, Callable

import _common as C

C.quiet()

from pyVmomi import vim, vmodl  # noqa: E402

from harness.evidence.recorder import Recorder, use_recorder  # noqa: E402
from harness.fakevc.world import FakeWorld, VCenterSeed  # noqa: E402
from harness.inventory.schema import load_inventory  # noqa: E402
from harness.vsphere import vms  # noqa: E402
from harness.safety import MutationGate  # noqa: E402
from harness.vsphere.client import VCenterClient  # noqa: E402

BENCH_GATE = MutationGate(allow_mutations=True)  # benches build and change their own throwaway fakes/vcsims

PC = vmodl.query.PropertyCollector


def seed(count: int) -> VCenterSeed:
    return VCenterSeed(name="bench", url="https://127.0.0.1:1/sdk", user="bench", password="bench", vms=count)


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--vms", type=int, default=2000, help="VMs of the built fake (default 2000)")
    p.add_argument("--reps", type=int, default=200, help="repetitions per operation (default 200)")
    p.add_argument("--builds", type=int, default=3, help="builds of the big fake (default 3)")
    args = p.parse_args()
    count = 200 if args.quick else args.vms
    reps = 20 if args.quick else args.reps
    builds = 1 if args.quick else args.builds
    C.header("fake_speed: one fake operation, and building a big fake vCenter", vms=count, reps=reps, builds=builds)
    report = C.Report("fake_speed")
    use_recorder(Recorder(test_id="bench"))

    # ---- build time ------------------------------------------------------------------------
    build_times = []
    for _ in range(builds):
        world = FakeWorld()
        gc.collect()
        with C.Timer() as t:
            vc = world.add_vcenter(seed(count))
        build_times.append(t.s)
        built = len(vc.vms())
        world.close()
        del world, vc
    build = C.median(build_times)
    report.figure("build_s", round(build, 4), f"{build:.3f} s median to build a fake vCenter with {built} VMs "
                                              f"({builds} builds: {', '.join(f'{b:.3f}' for b in build_times)} s)")

    # ---- operations ------------------------------------------------------------------------
    world = FakeWorld()
    world.add_vcenter(seed(4))
    si = vim.ServiceInstance("ServiceInstance", world.adapter("bench"))
    content = si.RetrieveContent()
    content.sessionManager.Login("bench", "bench")
    timeouts = load_inventory(C.fake_inventory()).timeouts
    client = VCenterClient("bench", si, timeouts, "fake", gate=BENCH_GATE)
    vm = content.rootFolder.childEntity[0].vmFolder.childEntity[0]
    pc = content.propertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vm)],
                         propSet=[PC.PropertySpec(type=vim.VirtualMachine,
                                                  pathSet=["name", "config.keyId", "runtime.powerState"])])
    counter = C.RoundTrips(si._stub)
    inside = {"s": 0.0}
    from harness.fakevc import dispatch
    original_invoke = dispatch.invoke

    def timed_invoke(*a: Any, **k: Any) -> Any:
        began = time.perf_counter()
        try:
            return original_invoke(*a, **k)
        finally:
            inside["s"] += time.perf_counter() - began

    dispatch.invoke = timed_invoke   # the adapter calls dispatch.invoke(vc, ...)
    n = iter(range(10 ** 9))

    def measure(fn: Callable[[], Any]) -> Callable[[], tuple[float, int, float]]:
        def go() -> tuple[float, int, float]:
            trips0, model0 = counter.count, inside["s"]
            with C.Timer() as t:
                fn()
            return t.s, counter.count - trips0, inside["s"] - model0
        return go

    def power_cycle(on: Callable[[], Any], off: Callable[[], Any]) -> Callable[[], dict]:
        def go() -> dict:
            return {"on": measure(on)(), "off": measure(off)()}
        return go

    contenders: dict[str, Callable[[], Any]] = {
        "call: property read (vm.name)": measure(lambda: vm.name),
        "call: RetrievePropertiesEx (1 VM, 3 paths)": measure(lambda: pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())),
        "call: power": power_cycle(vm.PowerOnVM_Task, vm.PowerOffVM_Task),
        "call: reconfigure (annotation)": measure(
            lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=f"bench-{next(n)}"))),
        "harness: client.read (3 paths)": measure(lambda: client.read(vm, ["name", "config.keyId", "runtime.powerState"])),
        "harness: power": power_cycle(lambda: vms.power_on(client, vm), lambda: vms.power_off(client, vm)),
        "harness: reconfigure (annotation)": measure(
            lambda: vms.reconfigure(client, vm, vim.vm.ConfigSpec(annotation=f"bench-{next(n)}"))),
    }
    for fn in contenders.values():  # warm-up
        fn()
    raw_results = C.alternate(contenders, reps)
    counter.remove()
    dispatch.invoke = original_invoke
    world.close()
    C.check_no_children()

    results: dict[str, list[tuple[float, int, float]]] = {}
    for name, samples in raw_results.items():
        if name.endswith("power"):
            results[f"{name} on"] = [s["on"] for s in samples]
            results[f"{name} off"] = [s["off"] for s in samples]
        else:
            results[name] = samples
    print(f"\n{reps} repetitions per operation, order rotated")
    print(f"  {'operation':46} {'median':>9} {'p90':>9} {'round trips':>12} {'in the model':>13}")
    medians = {}
    for name, samples in results.items():
        times = sorted(s[0] for s in samples)
        med = C.median(times)
        medians[name] = med
        p90 = times[int(len(times) * 0.9) - 1] if len(times) >= 10 else times[-1]
        model = C.median(s[2] for s in samples)
        print(f"  {name:46} {med * 1000:6.3f} ms {p90 * 1000:6.3f} ms {C.median(s[1] for s in samples):12.0f} "
              f"{model * 1000:10.3f} ms")
        report.figures[name] = {"median_ms": round(med * 1000, 4), "p90_ms": round(p90 * 1000, 4),
                                "round_trips": C.median(s[1] for s in samples), "model_ms": round(model * 1000, 4),
                                "n": len(samples)}
    calls = {k: v for k, v in medians.items() if k.startswith("call:")}
    worst = max(calls, key=calls.get)
    report.ratio("slowest fake operation, median (ms)", calls[worst] * 1000, "< 2 ms", calls[worst] < 0.002, worst)
    harness_ops = {k: v for k, v in medians.items() if k.startswith("harness:")}
    worst_h = max(harness_ops, key=harness_ops.get)
    report.ratio("slowest operation through the harness, median (ms)", harness_ops[worst_h] * 1000,
                 note=f"{worst_h}; informational: includes the task wait's extra round trips")
    report.ratio(f"build of {built} VMs (s)", build, "< 2 s" if count >= 2000 else "", build < 2 if count >= 2000 else None)
    report.finish(args.json)


if __name__ == "__main__":
    main()
