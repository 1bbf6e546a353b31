"""report.html stays readable and small: focused key grids, compact values, collapsed raw calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.evidence.display import bounded, compact, grid_view, observation_rows
from harness.evidence.html_report import render_html
from harness.evidence.verdicts import HostKeys, Observation

from .conftest import T_PUSH

VM_KEY = "vcrypt-shared-kms/100062"


def _sixty_two_keys(run_dir: Path, focus: list[str]) -> None:
    keys = [f"vcrypt-shared-kms/1000{i:02d}" for i in range(1, 63)]
    path = run_dir / "evidence" / f"{T_PUSH}.json"
    data = json.loads(path.read_text())
    data["host_keys"] = {"hosts": ["esx-01", "esx-02", "esx-03"], "keys": keys,
                         "holds": {"esx-01": keys, "esx-02": keys[:40] + [VM_KEY], "esx-03": keys[:10]},
                         "focus": focus}
    path.write_text(json.dumps(data))


def _grid_html(html: str) -> str:
    return re.search(r'<table class="grid">.*?</table>', html, re.S).group(0)


def test_the_grid_shows_the_tests_key_highlighted_and_counts_the_rest(run_dir: Path):
    _sixty_two_keys(run_dir, [VM_KEY])
    html = render_html(run_dir)
    assert "3 hosts × 62 keys; 1 shown" in html
    grid = _grid_html(html)
    assert grid.count('<th class="key mono focus"') == 1 and "100062" in grid and "this test's key" in grid
    assert "61 other key(s)" in grid
    # esx-03 lacks the VM's key: the highlighted cell says so in words, not only by colour
    row = re.search(r"esx-03</th>(.*?)</tr>", grid, re.S).group(1)
    assert "✗ not held" in row and "holds 10" in row


def test_without_focus_the_grid_is_bounded(run_dir: Path):
    _sixty_two_keys(run_dir, [])
    grid = _grid_html(render_html(run_dir))
    assert grid.count('<th class="key mono') == 8 and "54 other key(s)" in grid


def test_grid_view_counts_keys_outside_the_focus_per_host():
    grid = HostKeys(hosts=("a", "b"), keys=("p/1", "p/2", "p/3"),
                    holds={"a": frozenset({"p/1", "p/2"}), "b": frozenset({"p/3"})}, focus=("p/3",))
    view = grid_view(grid)
    assert view.keys == ("p/3",) and view.other_held == {"a": 2, "b": 0} and view.hidden == 2


def test_raw_api_calls_are_collapsed_and_values_are_compact(run_dir: Path):
    html = render_html(run_dir)
    boxes = re.findall(r"<details class=\"calls-box\"[^>]*>", html)
    assert boxes and all(" open" not in b for b in boxes)
    assert "CloneVM_Task" in html


def test_values_are_shown_as_fields_not_json_and_cut_with_a_count():
    disk = {"_type": "vim.vm.device.VirtualDisk", "key": 2000,
            "backing": {"_type": "vim.vm.device.VirtualDisk.FlatVer2BackingInfo", "fileName": "[ds] a.vmdk",
                        "keyId": {"_type": "vim.encryption.CryptoKeyId", "keyId": "100128",
                                  "providerId": {"_type": "vim.encryption.KeyProviderId", "id": "kms-a"}}}}
    assert compact(disk) == "VirtualDisk(key=2000, backing=FlatVer2BackingInfo(keyId=100128@kms-a))"
    long = "x" * 500
    assert bounded(long, 100) == "x" * 100 + "…(+400)"
    # a long device list keeps its key-bearing disk whole and shortens the rest
    devices = [{"_type": "vim.vm.device.VirtualIDEController", "key": 200 + i, "busNumber": i} for i in range(30)]
    text = bounded([*devices, disk], 200)
    assert "keyId=100128@kms-a" in text and "+30 other items: 30× VirtualIDEController" in text


def test_a_second_read_of_an_object_shows_what_changed_and_names_the_rest():
    before = Observation("before", "vc-a", "vim.VirtualMachine:vm-1", "before",
                         {"name": "vm", "config.keyId": "old", "runtime.powerState": "poweredOff"})
    after = Observation("after", "vc-a", "vim.VirtualMachine:vm-1", "after",
                        {"name": "vm", "config.keyId": "new", "runtime.powerState": "poweredOff"})
    first, second = observation_rows([before, after])
    assert first.changed == before.properties and not first.same
    assert second.changed == {"config.keyId": "new"}
    assert second.same == ("name", "runtime.powerState") and second.same_as == "before"


def test_rule_ids_are_not_clipped_by_the_stylesheet(run_dir: Path):
    html = render_html(run_dir)
    css = re.search(r"table\.matrix td\.rid \{[^}]*\}", html).group(0)
    assert "ellipsis" not in css and "overflow: hidden" not in css


def test_print_stylesheet_leaves_out_raw_calls(run_dir: Path):
    html = render_html(run_dir)
    print_css = html[html.index("@media print"):]
    assert re.search(r"details\.calls-box[^{]*\{ display: none; \}", print_css.replace(",\n", ", ")) or \
        "details.calls-box, #unmapped { display: none; }" in print_css
