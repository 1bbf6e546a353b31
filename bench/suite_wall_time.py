"""Wall time of the default `vcrypt run` (the fake inventory), serial vs `-n 2`, start-up measured apart.

Each run is a subprocess `python -m harness.cli run [-n 2]` from the repository root, into a
temporary reports folder; serial and parallel runs alternate. Per run:

  wall        the subprocess, end to end (interpreter and pytest start, collection, reports)
  run.json    duration_s and startup_s as the harness records them (under xdist the controller
              starts no environment, so its startup_s is 0)
  start-up    the `environment` fixture's set-up time (embedded KMS pair + fake vCenters), per
              pytest process, from the small plugin bench/_suite_timing.py loaded with -p (under
              -n 2 each worker starts its own; the slower one is shown)
  suites      per pytest process, its first test's set-up to its last test's teardown minus its
              start-up; under -n 2 the slower worker's figure (the suites are done when it is)

Goals: the whole default run, start-up included, under 60 s serial on 2 cores; -n 2 at least 1.5x
faster than serial on the suites themselves.

    python bench/suite_wall_time.py [--reps 2] [--workers 2] [--quick] [-- extra pytest args]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as C

C.quiet()

BENCH = Path(__file__).resolve().parent


def one_run(mode: str, workers: int, reports: Path, limit: int, extra: list[str], n: int,
            bytecode: bool = True) -> dict[str, Any]:
    run_id = f"bench-{mode}-{n}"
    timing = reports / f"{run_id}.timing.jsonl"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--reports", str(reports), "--run-id", run_id]
    if mode == "parallel":
        cmd += ["-n", str(workers)]
    cmd += ["-p", "_suite_timing", *extra]
    env = dict(os.environ, VCRYPT_BENCH_TIMING=str(timing), VCRYPT_BENCH_LIMIT=str(limit),
               PYTHONPATH=os.pathsep.join(p for p in (str(BENCH), str(C.REPO), os.environ.get("PYTHONPATH", "")) if p))
    if bytecode:  # Python's default, with the caches kept out of the working tree
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(reports / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    with C.Timer() as t:
        proc = subprocess.run(cmd, cwd=C.REPO, env=env, capture_output=True, text=True)
    run_json = reports / run_id / "run.json"
    run = json.loads(run_json.read_text()) if run_json.exists() else {}
    lines = [json.loads(line) for line in timing.read_text().splitlines()] if timing.exists() else []
    results_json = reports / run_id / "results.json"
    tests = json.loads(results_json.read_text())["tests"] if results_json.exists() else []
    outcomes: dict[str, int] = {}
    for test in tests:
        outcomes[test["outcome"]] = outcomes.get(test["outcome"], 0) + 1
    startup = max((w["env_s"] for w in lines), default=float("nan"))
    # per pytest process: its first test's set-up to its last test's teardown, minus its start-up;
    # the suites' time is the slowest process's (serial: the only one)
    busy = {w["worker"]: w["last"] - w["first"] - w["env_s"] for w in lines}
    cpu = {w["worker"]: w["cpu_last"] - w["cpu_first"] - w["env_cpu_s"] for w in lines}
    return {"mode": mode, "wall_s": t.s, "exit": proc.returncode, "duration_s": run.get("duration_s"),
            "run_startup_s": run.get("startup_s"), "startup_s": startup,
            "suites_s": max(busy.values(), default=float("nan")),
            "per_worker": {w["worker"]: {"tests": w["tests"], "startup_s": round(w["env_s"], 3),
                                         "suites_s": round(busy[w["worker"]], 3),
                                         "suites_cpu_s": round(cpu[w["worker"]], 3)} for w in lines},
            "workers": len(lines), "tests": sum(w["tests"] for w in lines), "outcomes": outcomes,
            "tail": proc.stdout.strip().splitlines()[-3:] + proc.stderr.strip().splitlines()[-3:]}


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=2, help="runs per mode (default 2)")
    p.add_argument("--workers", type=int, default=2, help="xdist workers of the parallel runs (default 2)")
    p.add_argument("--limit", type=int, default=0, help="run only the first N tests (default: all)")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="run with PYTHONDONTWRITEBYTECODE=1: every pytest process then recompiles (and "
                        "assertion-rewrites) the harness modules, as in an environment that sets it")
    p.add_argument("pytest_args", nargs="*", help="extra arguments for vcrypt run / pytest")
    args = p.parse_args()
    reps = 1 if args.quick else args.reps
    limit = 4 if args.quick and not args.limit else args.limit
    bytecode = not args.no_bytecode_cache
    C.header("suite_wall_time: default `vcrypt run` on the fake, serial vs -n", reps=reps, workers=args.workers,
             limit=limit or "all", bytecode_cache="on (Python's default; one untimed warm-up run fills it)"
             if bytecode else "off (PYTHONDONTWRITEBYTECODE=1)")
    report = C.Report("suite_wall_time")
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and bytecode:
        report.note("this shell sets PYTHONDONTWRITEBYTECODE; the runs here unset it (Python's default). "
                    "--no-bytecode-cache measures with it set")
    with tempfile.TemporaryDirectory(prefix="vcrypt-bench-runs-") as tmp:
        reports = Path(tmp)
        counter = iter(range(10 ** 6))
        if bytecode and not args.quick:  # fill __pycache__ (and pytest's rewritten-assertion caches) before timing
            one_run("serial", args.workers, reports, 2, args.pytest_args, next(counter), bytecode)
        results = C.alternate({
            "serial": lambda: one_run("serial", args.workers, reports, limit, args.pytest_args, next(counter), bytecode),
            "parallel": lambda: one_run("parallel", args.workers, reports, limit, args.pytest_args, next(counter),
                                        bytecode),
        }, reps)
    C.check_no_children()

    print(f"\n{reps} run(s) per mode, alternated")
    print(f"  {'mode':10} {'wall':>8} {'run.json duration':>18} {'run.json startup':>17} {'start-up':>9} "
          f"{'suites':>8} {'tests':>6}  outcomes / exit")
    for mode, runs in results.items():
        for r in runs:
            print(f"  {mode:10} {r['wall_s']:7.1f}s {r['duration_s'] or 0:17.1f}s {r['run_startup_s'] or 0:16.2f}s "
                  f"{r['startup_s']:8.2f}s {r['suites_s']:7.1f}s {r['tests']:6}  {r['outcomes']} exit {r['exit']}")
            print("             per process: " + ", ".join(
                f"{w}: {v['tests']} tests, start-up {v['startup_s']:.2f} s, suites {v['suites_s']:.1f} s "
                f"using {v['suites_cpu_s']:.1f} s CPU" for w, v in sorted(r["per_worker"].items())))
            if r["exit"] not in (0, 1) or not r["tests"]:
                print("    " + "\n    ".join(r["tail"]))
    med = {mode: {k: C.median(r[k] for r in runs) for k in ("wall_s", "startup_s", "suites_s")}
           for mode, runs in results.items()}
    for mode, m in med.items():
        report.figures[mode] = {**{k: round(v, 3) for k, v in m.items()}, "runs": results[mode]}
    if any(r["exit"] not in (0, 1) for runs in results.values() for r in runs):
        report.note("a run ended with an exit status other than 0/1 (see the output tails above)")
    failing = {mode: runs[0]["outcomes"] for mode, runs in results.items()
               if runs[0]["outcomes"].get("failed") or runs[0]["outcomes"].get("error")}
    if failing:
        report.note(f"some tests failed or errored (the fake is still being completed?): {failing}")
    serial_wall = med["serial"]["wall_s"]
    report.ratio("serial run wall time, start-up included (s)", serial_wall, "< 60 s", serial_wall < 60,
                 f"start-up {med['serial']['startup_s']:.2f} s, suites {med['serial']['suites_s']:.1f} s")
    speedup = med["serial"]["suites_s"] / med["parallel"]["suites_s"]
    report.ratio(f"serial/-n {args.workers} on the suites themselves", speedup, ">= 1.5", speedup >= 1.5,
                 f"{med['serial']['suites_s']:.1f} s vs {med['parallel']['suites_s']:.1f} s")
    report.ratio(f"serial/-n {args.workers} wall time (start-up included)", serial_wall / med["parallel"]["wall_s"])
    report.finish(args.json)


if __name__ == "__main__":
    main()
