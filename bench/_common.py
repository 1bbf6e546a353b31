"""Shared helpers of the bench scripts: machine facts, medians, round-trip counting, the ratio block.

Every bench script prints its figures, then a final block

    ratios:
      <name>: <value>   goal <goal>: met|MISSED (...)

so a reader (and tests/test_bench_smoke.py) finds the answers last. Nothing here times anything
by itself: each script alternates its contenders in one process so drift hits all of them alike.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))


def quiet() -> None:
    """Silence the deprecation noise of kmip/pyVmomi imports and the harness's retry logs."""
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("kmip", "vcrypt", "vcrypt.vsphere", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def machine() -> dict[str, Any]:
    """nproc, CPU model (from /proc/cpuinfo), Python version: printed with every result."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count() or 0
    return {"nproc": nproc, "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repetitions (smoke test)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


def header(title: str, **settings: Any) -> None:
    m = machine()
    print(f"== {title}")
    print(f"machine: nproc={m['nproc']}, cpu={m['cpu']}, python={m['python']}, {m['platform']}, "
          f"load average {load()} (other processes compete for the cores when it is above ~0.5)")
    if settings:
        print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    sys.stdout.flush()


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class Timer:
    """`with Timer() as t: ...` then `t.s` (perf_counter seconds)."""

    def __enter__(self) -> "Timer":
        self.began = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.s = time.perf_counter() - self.began


class RoundTrips:
    """Counts (and times) every request a pyVmomi stub sends: wraps the stub's InvokeMethod.

    Property accessors (`vm.name`) go through InvokeMethod too (a `Fetch`), so this is every round
    trip. `inside` is the time spent in the stub (serialization, transport, the server's work):
    total time minus `inside` is what the client-side code costs.
    """

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self.count = 0
        self.inside = 0.0
        self.by_method: dict[str, int] = {}
        self._original = stub.InvokeMethod

        def counting(mo: Any, info: Any, args: Any) -> Any:
            self.count += 1
            self.by_method[info.wsdlName] = self.by_method.get(info.wsdlName, 0) + 1
            began = time.perf_counter()
            try:
                return self._original(mo, info, args)
            finally:
                self.inside += time.perf_counter() - began

        stub.InvokeMethod = counting

    def snapshot(self) -> tuple[int, float]:
        return self.count, self.inside

    def reset(self) -> None:
        self.count, self.inside, self.by_method = 0, 0.0, {}

    def remove(self) -> None:
        self.stub.InvokeMethod = self._original


@dataclass
class Ratio:
    name: str
    value: float
    goal: str = ""          # e.g. "<= 1.2"
    met: bool | None = None  # None: no goal, informational
    note: str = ""

    def line(self) -> str:
        text = f"  {self.name}: {self.value:.3f}"
        if self.goal:
            verdict = "met" if self.met else "MISSED"
            text += f"   goal {self.goal}: {verdict}"
        if self.note:
            text += f"   ({self.note})"
        return text


@dataclass
class Report:
    """The figures of one script, printed as it goes, the ratios last; optionally saved as JSON."""
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str, value: Any, text: str | None = None) -> None:
        self.figures[key] = value
        print(f"  {key}: {text if text is not None else value}")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}")
        sys.stdout.flush()

    def ratio(self, name: str, value: float, goal: str = "", met: bool | None = None, note: str = "") -> None:
        self.ratios.append(Ratio(name, value, goal, met, note))

    def finish(self, json_path: Path | None = None) -> None:
        print(f"load average at end: {load()}")
        print("ratios:")
        for r in self.ratios:
            print(r.line())
        if not self.ratios:
            print("  (none: see notes)")
        sys.stdout.flush()
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps({
                "title": self.title, "machine": machine(), "load_at_end": load(), "figures": self.figures, "notes": self.notes,
                "ratios": [r.__dict__ for r in self.ratios]}, indent=1, default=str))


def alternate(contenders: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[Any]]:
    """Run each contender `reps` times, rotating the order every repetition (drift cancels out)."""
    names = list(contenders)
    results: dict[str, list[Any]] = {n: [] for n in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return results


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median of per-round ratios: rounds ran back to back, so a slow spell of the machine hits both."""
    return median(a / b for a, b in zip(numerators, denominators) if b)


def fake_inventory() -> Path:
    return REPO / "inventories" / "fake.yaml"


def vcsim_inventory() -> Path:
    return REPO / "inventories" / "vcsim.yaml"


def own_children() -> list[str]:
    """Live (non-zombie) processes whose parent is this process: should be none when a script ends."""
    out = []
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text.rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] not in ("Z", "X"):
            out.append(f"pid {stat.parent.name}: {text.split('(', 1)[1].rsplit(')', 1)[0]}")
    return out


def check_no_children() -> None:
    left = own_children()
    print(f"processes left running by this script: {', '.join(left) if left else 'none'}")
