"""How late does a task waiter notice that the task finished?

On the fake vCenter, `TaskManager.task_duration` keeps every task running on a worker thread for a
known time. A no-crypto reconfigure is started, then one waiter waits for it; the latency is the
waiter's return time minus the task's `info.completeTime` (both from the same clock: the fake runs
in this process, and its model's completeTime is read directly, at microsecond precision).

Waiters, alternated: the harness's `harness.vsphere.tasks.wait_for_task` (PropertyCollector
WaitForUpdatesEx), `pyVim.task.WaitForTask` (WaitForUpdates, with the content cached), and the
one-second polling loop community scripts write (`while task.info.state not in (...): sleep(1)`).

Goal: the harness within 10 ms of the best waiter (median latency).

    python bench/task_waits.py [--reps 15] [--durations 0.2] [--poll 1.0] [--quick]
"""
from __future__ import annotations

import time
from typing import Any, Callable

import _common as C

C.quiet()

from pyVim.task import WaitForTask  # noqa: E402
from pyVmomi import vim  # noqa: E402

from harness.targets.environment import open_environment  # noqa: E402
from harness.vsphere import find  # noqa: E402
from harness.safety import MutationGate  # noqa: E402
from harness.vsphere.client import VCenterClient  # noqa: E402

BENCH_GATE = MutationGate(allow_mutations=True)  # benches build and change their own throwaway fakes/vcsims
from harness.vsphere.tasks import wait_for_task  # noqa: E402


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=15, help="tasks per waiter and duration (default 15)")
    p.add_argument("--durations", default="0.2", help="comma-separated task durations in seconds (default 0.2)")
    p.add_argument("--poll", type=float, default=1.0, help="the polling loop's sleep (default 1.0 s)")
    args = p.parse_args()
    reps = 2 if args.quick else args.reps
    durations = [float(d) for d in args.durations.split(",")]
    C.header("task_waits: task completion -> waiter returns", reps=reps, durations=durations, poll_s=args.poll)
    report = C.Report("task_waits")

    with open_environment(C.fake_inventory()) as env:
        inv = env.inventory
        fake = env.fake_vcenter("vc-a")
        si = env.service_instance("vc-a")
        client = VCenterClient("vc-a", si, inv.timeouts, "fake", gate=BENCH_GATE)
        pc = si.RetrieveContent().propertyCollector
        vm = find.by_name(client, vim.VirtualMachine, None)
        counter = C.RoundTrips(si._stub)

        def poll(task: Any) -> None:
            while task.info.state not in ("success", "error"):
                time.sleep(args.poll)

        waiters: dict[str, Callable[[Any], Any]] = {
            "harness wait_for_task": lambda task: wait_for_task(client, task, what="bench reconfigure"),
            "pyVim WaitForTask": lambda task: WaitForTask(task, si=si, pc=pc),
            f"polling loop ({args.poll:g} s)": poll,
        }
        seq = iter(range(10 ** 9))

        def one(waiter: Callable[[Any], Any]) -> tuple[float, int, float]:
            task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=f"bench-wait-{next(seq)}"))
            trips0 = counter.count
            began = time.time()
            waiter(task)
            returned = time.time()
            trips = counter.count - trips0
            model = fake.objects[task._moId]
            done = model.info.completeTime.timestamp()
            assert model.info.state == "success", model.info.state
            return returned - done, trips, returned - began

        results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in waiters}
        try:
            fake.tasks.task_duration = 0.0
            for waiter in waiters.values():  # warm-up: the harness's private collector, pyVmomi caches
                one(waiter)
            for duration in durations:
                fake.tasks.task_duration = duration
                got = C.alternate({name: (lambda w=w: one(w)) for name, w in waiters.items()}, reps)
                for name, samples in got.items():
                    results[name].extend(samples)
        finally:
            fake.tasks.task_duration = 0.0
        counter.remove()

    C.check_no_children()
    print(f"\n{reps} tasks per waiter and duration ({', '.join(f'{d:g} s' for d in durations)}), order rotated")
    print(f"  {'waiter':28} {'median latency':>15} {'min':>10} {'max':>10} {'round trips':>12} {'wait':>10}")
    medians = {}
    for name, samples in results.items():
        lat = [s[0] for s in samples]
        medians[name] = C.median(lat)
        print(f"  {name:28} {C.median(lat) * 1000:12.2f} ms {min(lat) * 1000:7.2f} ms {max(lat) * 1000:7.2f} ms "
              f"{C.median(s[1] for s in samples):12.0f} {C.median(s[2] for s in samples) * 1000:7.1f} ms")
        report.figures[name] = {"median_latency_ms": round(C.median(lat) * 1000, 3), "min_ms": round(min(lat) * 1000, 3),
                                "max_ms": round(max(lat) * 1000, 3), "round_trips": C.median(s[1] for s in samples),
                                "n": len(samples)}
    best_name = min(medians, key=medians.get)
    harness = medians["harness wait_for_task"]
    gap_ms = (harness - medians[best_name]) * 1000
    report.ratio("harness latency - best latency (ms)", gap_ms, "<= 10 ms", gap_ms <= 10,
                 f"best: {best_name} {medians[best_name] * 1000:.2f} ms; harness {harness * 1000:.2f} ms")
    report.ratio("harness/pyVim latency", harness / medians["pyVim WaitForTask"])
    poll_name = [n for n in medians if n.startswith("polling")][0]
    report.ratio("polling/harness latency", medians[poll_name] / harness)
    report.finish(args.json)


if __name__ == "__main__":
    main()
