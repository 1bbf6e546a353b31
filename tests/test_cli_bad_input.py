"""Bad input to `vcrypt` gives exit 2 and one line naming the problem, never a traceback.

The subprocess tests run the installed console script, exactly as a user or CI job does. The
hypothesis test drives the click app in-process with generated argument lists; its grammar makes
every invocation that could start something (a run, a KMS, a vcsim, a vCenter session) carry an
invalid inventory or option *before* anything the generator adds, and tripwires fail the test if
anything is started regardless.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import cli

INVENTORIES = Path(__file__).resolve().parent.parent / "inventories"
USAGE = 2


def vcrypt_command() -> list[str]:
    """The installed console script next to this interpreter (the venv's), else `main()` directly."""
    script = Path(sys.executable).parent / "vcrypt"
    if script.exists():
        return [str(script)]
    found = shutil.which("vcrypt")
    return [found] if found else [sys.executable, "-c", "from harness.cli import main; main()"]


def vcrypt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vcrypt_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], needle: str, code: int = USAGE) -> str:
    """Exit `code`, no traceback, and exactly one problem line on stderr that contains `needle`.

    Our own failures print only `vcrypt: <problem>`; click's usage errors print a usage banner
    plus one `Error: <problem>` line.
    """
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == code, output
    lines = proc.stderr.splitlines()
    problems = [line for line in lines if line.startswith(("vcrypt: ", "Error: "))]
    assert len(problems) == 1, proc.stderr
    if problems[0].startswith("vcrypt: "):
        assert lines == problems, f"only the problem line on stderr: {proc.stderr!r}"
    assert needle in problems[0], problems[0]
    return problems[0]


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Invalid inventories of several kinds, plus folders that are not run folders."""
    root = tmp_path_factory.mktemp("bad-input")
    files = {
        "syntax": "vcenters:\n  - name: vc-a\n    target: [fake\n",
        "unknown_key": "vcenters:\n  - name: vc-a\n    target: real\n    host: vc.lab.example\n"
                       "    pasword_env: VC_PASSWORD\n",
        "empty": "",
        "not_mapping": "- vc-a\n",
        # valid, but a real vCenter with the embedded KMS: `kms register` must refuse it before connecting
        "real_embedded": "vcenters:\n  - name: vc-a\n    target: real\n    host: vc.lab.example\n"
                         "    password_env: VC_PASSWORD\nkms: {embedded: true}\n",
    }
    paths = {name: root / f"{name}.yaml" for name in files}
    for name, text in files.items():
        paths[name].write_text(text)
    paths["missing"] = root / "missing.yaml"
    paths["directory"] = root / "a-folder"
    paths["directory"].mkdir()
    (root / "broken-run").mkdir()
    (root / "broken-run" / "results.json").write_text("{not json")
    paths["broken_run"] = root / "broken-run"
    paths["root"] = root
    return paths


# ---- the console script ------------------------------------------------------------------------

def test_run_with_malformed_inventory(bad: dict[str, Path]) -> None:
    line = assert_clean_failure(vcrypt("run", "--inventory", str(bad["syntax"]), cwd=bad["root"]),
                                f"inventory {bad['syntax']}: line 4: not valid YAML")
    assert line.startswith("vcrypt: inventory ")


def test_run_with_unknown_key_names_the_key_path(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("run", "-i", str(bad["unknown_key"]), cwd=bad["root"]),
                         f"inventory {bad['unknown_key']}: vcenters.vc-a.pasword_env: unknown key")


@pytest.mark.parametrize(("kind", "problem"), [("missing", "(file): not found"),
                                               ("directory", "(file): cannot be read"),
                                               ("empty", "(top level): must be a mapping"),
                                               ("not_mapping", "(top level): must be a mapping")])
def test_run_with_unusable_inventory_file(bad: dict[str, Path], kind: str, problem: str) -> None:
    assert_clean_failure(vcrypt("run", "--inventory", str(bad[kind]), cwd=bad["root"]),
                         f"inventory {bad[kind]}: {problem}")


def test_kms_register_unknown_vcenter(bad: dict[str, Path]) -> None:
    inventory = INVENTORIES / "fake.yaml"
    assert_clean_failure(vcrypt("kms", "register", "--inventory", str(inventory), "--vcenter", "vc-nope",
                                cwd=bad["root"]),
                         f"inventory {inventory}: vcenters: no vCenter named 'vc-nope'")


def test_kms_register_with_malformed_inventory(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("kms", "register", "-i", str(bad["syntax"]), "--vcenter", "vc-a", cwd=bad["root"]),
                         "not valid YAML")


def test_kms_register_embedded_kms_on_a_real_vcenter(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("kms", "register", "-i", str(bad["real_embedded"]), "--vcenter", "vc-a",
                                cwd=bad["root"]), "an embedded KMS lives only as long as this command")


def test_kms_register_without_vcenter(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("kms", "register", "-i", str(INVENTORIES / "fake.yaml"), cwd=bad["root"]),
                         "Missing option '--vcenter'")


def test_verify_evidence_nonexistent(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("verify-evidence", "/nonexistent", cwd=bad["root"]),
                         "/nonexistent: no such run folder")


def test_unknown_subcommand(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("frobnicate", cwd=bad["root"]), "No such command 'frobnicate'")


@pytest.mark.parametrize(("args", "needle"), [
    (("run", "-n", "-1"), "Invalid value for '-n': -1 is not in the range 0<=x<=64"),
    (("run", "-n", "many"), "Invalid value for '-n'"),
    (("run", "-n", "65"), "Invalid value for '-n'"),
    (("run", "--inventory"), "Option '--inventory' requires an argument"),
    (("kms", "serve", "--no-such-option"), "No such option '--no-such-option'"),
    (("kms", "frobnicate"), "No such command 'frobnicate'"),
    (("vcsim", "serve", "--hosts", "0"), "Invalid value for '--hosts'"),
    (("vcsim", "serve", "--vms", "-3"), "Invalid value for '--vms'"),
    (("rules", "--run", "/nonexistent"), "Directory '/nonexistent' does not exist"),
    (("kms", "register", "--vcenter", "vc-a", "--role", "primary", "-i", "x.yaml"), "Invalid value for '--role'"),
    (("--no-such-flag",), "No such option '--no-such-flag'"),
])
def test_bad_options(bad: dict[str, Path], args: tuple[str, ...], needle: str) -> None:
    assert_clean_failure(vcrypt(*args, cwd=bad["root"]), needle)


def test_rules_with_a_folder_that_is_not_a_run(bad: dict[str, Path]) -> None:
    assert_clean_failure(vcrypt("rules", "--run", str(bad["directory"]), cwd=bad["root"]),
                         f"{bad['directory']}: not a run folder (results.json: No such file or directory)")
    assert_clean_failure(vcrypt("rules", "--run", str(bad["broken_run"]), cwd=bad["root"]),
                         f"{bad['broken_run']}: not a run folder (results.json: ")


# ---- generated argument lists, in-process ------------------------------------------------------

WORD = st.text(alphabet="abcdefghjklmopqrstuvwxyzABC0123456789._/:@", min_size=1, max_size=12)
BAD_INT = st.sampled_from(["-1", "65", "999999", "abc", "", "1.5", "0x10", "nan"])
# Tokens that may follow a bad `--inventory`: none can set the inventory again (no `-i`/`--inventory`,
# no short-option cluster containing `i`), so the bad one always wins.
TAIL_TOKEN = st.one_of(
    WORD, BAD_INT,
    st.sampled_from(["-n", "-k", "-x", "-q", "-v", "--compliance", "--run-id", "--role", "--vcenter", "--help", "-h",
                     "--", "--workdir", "--hosts", "--vms", "--api-version", "--version", "shared", "dedicated"]),
)
TAIL = st.lists(TAIL_TOKEN, max_size=6)
UNKNOWN_OPTION = WORD.map(lambda w: f"--no-such-{w}")


def not_a_command(group: Any) -> st.SearchStrategy[str]:
    """Words that are not a subcommand of `group` now (other engineers add commands)."""
    names = set(group.list_commands(None))  # type: ignore[arg-type]
    return WORD.filter(lambda w: w not in names)


@st.composite
def bad_argv(draw: st.DrawFn, bad_inventories: list[str], plain_folders: list[str]) -> list[str]:
    """An argv that can only end in help, version, a usage error or a refused inventory."""
    inventory = draw(st.sampled_from(bad_inventories))
    starters = [cmd for cmd in ("run", "audit", "verify-config") if cmd in cli.main.commands]
    forms = [
        lambda: [draw(not_a_command(cli.main))] + draw(TAIL),
        lambda: [draw(UNKNOWN_OPTION)] + draw(TAIL),
        lambda: draw(st.sampled_from([[], ["--help"], ["-h"], ["--version"]])),
        lambda: [draw(st.sampled_from(starters)), draw(st.sampled_from(["--inventory", "-i"])), inventory]
        + draw(TAIL),
        lambda: ["run", "--inventory", inventory, "-n", draw(BAD_INT)] + draw(TAIL),
        lambda: ["kms", "register", "-i", inventory] + draw(TAIL),
        lambda: ["kms", "register", "--vcenter", draw(WORD), "--inventory", inventory] + draw(TAIL),
        lambda: ["kms", "serve", draw(UNKNOWN_OPTION)] + draw(TAIL),
        lambda: ["vcsim", "serve", draw(UNKNOWN_OPTION)] + draw(TAIL),
        lambda: [draw(st.sampled_from(["kms", "vcsim"]))] + draw(st.sampled_from([[], ["--help"], ["nope"]])),
        lambda: ["verify-evidence", draw(st.sampled_from(plain_folders))] + draw(st.lists(WORD, max_size=2)),
        lambda: ["rules", "--run", draw(st.sampled_from(plain_folders))] + draw(st.lists(WORD, max_size=2)),
    ]
    if "merge" in cli.main.commands:  # inputs that are no intact run folders: refused, nothing written
        forms.append(lambda: ["merge", *draw(st.lists(st.sampled_from(plain_folders), min_size=1, max_size=2)),
                              "--out", draw(WORD)] + draw(st.lists(st.sampled_from(["--allow-partial", "--compliance"]),
                                                                   max_size=2)))
    if "sweep" in cli.main.commands:
        forms.append(lambda: ["sweep", "--inventory", inventory, "--run-id", draw(WORD)] + draw(TAIL))
    return draw(st.sampled_from(forms))()


class Tripwire(AssertionError):
    """Something was started that the grammar promised never to start."""


@pytest.fixture(scope="module")
def tripwires() -> Iterator[None]:
    """Fail loudly if a generated argv gets as far as starting a run, a KMS, a vcsim or an environment."""
    import harness.targets.environment
    import harness.kms.server
    import harness.vcsim.build

    def trip(*_: Any, **__: Any) -> None:
        raise Tripwire("a generated argv started something real")

    with pytest.MonkeyPatch.context() as patch:
        import harness.run.launch
        patch.setattr(harness.run.launch, "_run_pytest", trip)
        patch.setattr(harness.targets.environment, "open_environment", trip)
        patch.setattr(harness.kms.server, "EmbeddedKms", trip)
        patch.setattr(harness.vcsim.choice, "find_vcsim", trip)
        yield


@pytest.fixture(scope="module")
def argv_material(bad: dict[str, Path]) -> tuple[list[str], list[str]]:
    bad_inventories = [str(bad[k]) for k in ("syntax", "unknown_key", "empty", "not_mapping", "missing",
                                             "directory")]
    plain_folders = [str(bad["directory"]), str(bad["broken_run"]), str(bad["root"] / "no-such-run"),
                     str(bad["syntax"])]
    return bad_inventories, plain_folders


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(draw=st.data())
def test_generated_bad_argv_never_escapes(tripwires: None, argv_material: tuple[list[str], list[str]],
                                          bad: dict[str, Path], draw: st.DataObject) -> None:
    argv = draw.draw(bad_argv(*argv_material), label="argv")
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=bad["root"]):  # no reports/ of other runs in sight
        result = runner.invoke(cli.main, argv, catch_exceptions=False, prog_name="vcrypt")
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in {0, 1, 2}, (argv, result.exit_code, output)
    assert "Traceback" not in output, (argv, output)
    if result.exit_code == USAGE:
        assert any(line.startswith(("vcrypt: ", "Error: ")) for line in result.stderr.splitlines()) \
            or "Usage:" in output, (argv, output)
