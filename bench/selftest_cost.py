"""Where a `vcrypt selftest` defect's time goes: one fresh pytest process per defect vs a session worker.

For a sample of seeded defects (spread over the rules), each defect's session runs two ways,
alternated:

  process   `python -m pytest suites --rules R --inventory <fake with the defect>` in a fresh
            interpreter (what `vcrypt selftest` did before: every fixed cost paid per defect)
  worker    the same pytest arguments sent to one long-lived `harness.commands.selftest_worker` process
            (what it does now: imports, plugin loading and suite collection paid once per worker; the
            embedded KMS pair started once per worker and lent to each session, harness/kms/kept.py;
            results.json without the rendered reports, `--results-only`; gc.freeze() after each session)

Per session the plugin bench/_selftest_timing.py splits the wall time into: start-up
(interpreter, imports, plugin loading), collection (incl. assertion rewriting), environment
(embedded KMS pair + fake world in a fresh process; the fake world alone in a worker), tests, reports
(environment stop and the run folder's reports), exit (interpreter shutdown; in a worker, pytest's own
unconfigure). Both ways must give the same outcomes per test.

With --scaling 1,2 it also times the whole `vcrypt selftest -n N` for each N (minutes each).
Goal: the whole selftest under 3 minutes on 2 cores (projected here from the per-defect figure).

    python bench/selftest_cost.py [--defects 8] [--reps 2] [--scaling 1,2,4]
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

C.quiet()

BENCH = Path(__file__).resolve().parent
PHASES = ("start-up", "collection", "environment", "tests", "reports", "exit")
GOAL_S = 180.0


def sample(count: int) -> list[Any]:
    from harness.fakevc.catalogue import load_all
    defects = sorted(load_all().values(), key=lambda d: (d.rule, d.name))
    step = max(1, len(defects) // max(1, count))
    return defects[::step][:count]


def phases(began: float, ended: float, mark: dict[str, Any]) -> dict[str, float]:
    first = mark["first"] or mark["collected"]
    last = mark["last"] or first
    return {"start-up": mark["configured"] - began, "collection": mark["collected"] - mark["configured"],
            "environment": mark["env_s"], "tests": last - first - mark["env_s"],
            "reports": mark["unconfigured"] - last, "exit": ended - mark["unconfigured"]}


def outcomes(run_dir: Path) -> dict[str, str]:
    results = run_dir / "results.json"
    if not results.exists():
        return {}
    return {t["nodeid"]: t["outcome"] for t in json.loads(results.read_text())["tests"]}


class Runner:
    def __init__(self, folder: Path) -> None:
        from harness.commands.selftest import WorkerPool
        self.folder = folder
        self.timing = folder / "timing.jsonl"
        os.environ["VCRYPT_BENCH_TIMING"] = str(self.timing)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), str(C.REPO), os.environ.get("PYTHONPATH", "")) if p)
        self.pool = WorkerPool(1, folder)
        self.count = 0

    def _last_mark(self) -> dict[str, Any]:
        return json.loads(self.timing.read_text().splitlines()[-1])

    def session(self, way: str, defect: Any) -> dict[str, Any]:
        from harness.commands.selftest import _session_args
        from harness.commands.selftest_worker import SESSION_FLAGS
        self.count += 1
        folder = self.folder / f"{way}-{self.count}"
        folder.mkdir()
        args, run_dir = _session_args([defect.rule], defect.name, folder, C.REPO / "suites")
        args += ["-p", "_selftest_timing"]
        began = time.time()
        if way == "process":
            subprocess.run([sys.executable, "-m", "pytest", *args, *SESSION_FLAGS[:5]], cwd=C.REPO,
                           capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        else:
            self.pool.run(args)
        ended = time.time()
        return {"defect": defect.name, "wall_s": ended - began, "phases": phases(began, ended, self._last_mark()),
                "outcomes": outcomes(run_dir)}

    def close(self) -> None:
        self.pool.close()


def scaling(workers: int) -> dict[str, Any]:
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "selftest", "-n", str(workers)], cwd=C.REPO,
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    caught = re.search(r"^(\d+)/(\d+) defects caught", proc.stdout, re.M)
    return {"workers": workers, "wall_s": wall, "exit": proc.returncode, "caught": caught.group(0) if caught else "?"}


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--defects", type=int, default=8, help="defects in the sample (default 8)")
    p.add_argument("--reps", type=int, default=2, help="sessions per defect and way (default 2)")
    p.add_argument("--scaling", default="", help="also time the whole `vcrypt selftest -n N` for these N, e.g. 1,2,4")
    args = p.parse_args()
    count, reps = (1, 1) if args.quick else (args.defects, args.reps)
    defects = sample(count)
    from harness.fakevc.catalogue import load_all
    total_defects = len(load_all())
    C.header("selftest_cost: a defect's session in a fresh process vs in a session worker", defects=count, reps=reps,
             sample=",".join(d.name for d in defects))
    report = C.Report("selftest_cost")
    with tempfile.TemporaryDirectory(prefix="vcrypt-bench-selftest-") as tmp:
        runner = Runner(Path(tmp))
        try:
            warm = runner.session("worker", defects[0])  # the worker's one-off imports and collection
            runs: dict[str, list[dict[str, Any]]] = {"process": [], "worker": []}
            for rep in range(reps):
                for defect in defects:
                    ways = ("process", "worker") if rep % 2 == 0 else ("worker", "process")
                    for way in ways:
                        runs[way].append(runner.session(way, defect))
        finally:
            runner.close()
    scaled = [scaling(int(n)) for n in args.scaling.split(",") if n.strip()]
    C.check_no_children()

    same = all(a["outcomes"] == b["outcomes"] and a["outcomes"] for a, b in zip(runs["process"], runs["worker"]))
    print(f"\nper session, median over {count} defects x {reps} rep(s) (seconds)")
    print(f"  {'way':8} {'wall':>7} " + " ".join(f"{ph:>11}" for ph in PHASES))
    med: dict[str, dict[str, float]] = {}
    for way, sessions in runs.items():
        med[way] = {"wall": C.median(s["wall_s"] for s in sessions),
                    **{ph: C.median(s["phases"][ph] for s in sessions) for ph in PHASES}}
        print(f"  {way:8} {med[way]['wall']:7.2f} " + " ".join(f"{med[way][ph]:11.2f}" for ph in PHASES))
        report.figures[way] = {k: round(v, 3) for k, v in med[way].items()}
    print(f"  worker's first session (one-off imports and collection): {warm['wall_s']:.2f} s, "
          f"start-up+collection {warm['phases']['start-up'] + warm['phases']['collection']:.2f} s")
    report.figures["warm_up_s"] = round(warm["wall_s"], 2)
    for s in scaled:
        print(f"  vcrypt selftest -n {s['workers']}: {s['wall_s']:.0f} s, {s['caught']}, exit {s['exit']}")
    report.figures["scaling"] = scaled
    if not same:
        report.note("the two ways gave different outcomes for some defect (see results): the comparison is void")

    fixed = {way: med[way]["start-up"] + med[way]["collection"] + med[way]["exit"] for way in med}
    ratio = med["process"]["wall"] / med["worker"]["wall"]
    report.ratio("process/worker wall time per defect", ratio, ">= 1.5", ratio >= 1.5,
                 f"{med['process']['wall']:.2f} s vs {med['worker']['wall']:.2f} s")
    report.ratio("fixed share of a fresh process (start-up+collection+exit / wall)",
                 fixed["process"] / med["process"]["wall"], note=f"{fixed['process']:.2f} s")
    report.ratio("environment share of a worker session", med["worker"]["environment"] / med["worker"]["wall"],
                 note=f"{med['worker']['environment']:.2f} s: the fake world per defect (KMS pair kept per worker)")
    sessions = total_defects + 2
    projected = sessions * med["worker"]["wall"] / 2
    report.ratio("projected selftest -n 2 wall (s): sessions x worker session / 2", projected, f"< {GOAL_S:.0f}",
                 projected < GOAL_S, f"{sessions} sessions; assumes 2 idle cores")
    one = next((s for s in scaled if s["workers"] == 1), None)
    for s in scaled:
        if s["workers"] == 2:
            report.ratio("measured selftest -n 2 wall (s)", s["wall_s"], f"< {GOAL_S:.0f}", s["wall_s"] < GOAL_S)
        if one and s["workers"] > 1:
            report.ratio(f"selftest -n 1 / -n {s['workers']}", one["wall_s"] / s["wall_s"])
    report.ratio("same outcomes both ways (1 = yes)", float(same), "= 1", same)
    report.finish(args.json)


if __name__ == "__main__":
    main()
