"""Shallow vs deep rekey of a VM with a 64 MiB disk on the fake, and deep rekey vs the machine's AES.

The VM is made with `harness.vsphere.vms.create_vm(disk_kib=65536)` and encrypted; then shallow and
deep rekeys (each to a fresh key made beforehand, so KMIP Create is not timed) alternate with an
AES-256-CTR pass (cryptography) over the same number of bytes, all in one process.

A shallow rekey rewraps the data key (DEK) with the new KEK; a deep rekey decrypts and re-encrypts
every byte with a new DEK (two AES-CTR passes), so the ceiling for deep rekey throughput is half
the single-pass AES figure. Both rekeys also fetch the old and the new KEK over KMIP.

    python bench/rekey_cost.py [--mib 64] [--reps 7] [--quick]
"""
from __future__ import annotations

import os
from typing import Any

import _common as C

C.quiet()

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from harness.targets.environment import open_environment  # noqa: E402
from harness.evidence.recorder import Recorder, use_recorder  # noqa: E402
from harness.vsphere import crypto, find, keys, policies, vms  # noqa: E402
from harness.safety import MutationGate  # noqa: E402
from harness.vsphere.client import VCenterClient  # noqa: E402

BENCH_GATE = MutationGate(allow_mutations=True)  # benches build and change their own throwaway fakes/vcsims

MIB = 1024 * 1024


def aes_ctr(data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=64, help="disk size in MiB (default 64)")
    p.add_argument("--reps", type=int, default=7, help="rekeys of each kind (default 7)")
    args = p.parse_args()
    mib = 4 if args.quick else args.mib
    reps = 2 if args.quick else args.reps
    C.header("rekey_cost: shallow vs deep rekey on the fake, deep vs AES-CTR", disk_mib=mib, reps=reps)
    report = C.Report("rekey_cost")
    use_recorder(Recorder(test_id="bench"))

    with open_environment(C.fake_inventory()) as env:
        inv = env.inventory
        entry = inv.vcenter("vc-a")
        client = VCenterClient("vc-a", env.service_instance("vc-a"), inv.timeouts, "fake", gate=BENCH_GATE)
        place = find.placement(client, entry.datacenter, entry.cluster)
        policy = policies.discover(env.pbm("vc-a")).encryption
        with C.Timer() as t:
            vm = vms.create_vm(client, place, "vcrypt-bench-rekey", "vcrypt-bench", disk_kib=mib * 1024)
        report.figure("create_s", round(t.s, 4), f"{t.s * 1000:.1f} ms to create the VM with a {mib} MiB disk")
        data = b"\0" * (mib * MIB)
        try:
            with C.Timer() as t:
                crypto.encrypt(client, vm, keys.generate_key(client), policy)
            report.figure("encrypt_s", round(t.s, 4), f"{t.s * 1000:.1f} ms to encrypt it (KMIP Create included)")

            def rekey(kind: str) -> Any:
                def go() -> float:
                    key = keys.generate_key(client)  # not timed
                    with C.Timer() as t:
                        if kind == "shallow":
                            crypto.shallow_rekey(client, vm, key)
                        else:
                            crypto.deep_rekey(client, vm, key, policy)
                    return t.s
                return go

            def aes() -> float:
                with C.Timer() as t:
                    aes_ctr(data)
                return t.s

            rekey("shallow")()  # warm-up
            rekey("deep")()
            state = vms.state(client, vm)
            if state.key is None:
                report.note("the VM is not encrypted after encrypt/rekey: the fake's rekey is still a stub?")
            results = C.alternate({"shallow rekey": rekey("shallow"), "deep rekey": rekey("deep"),
                                   "AES-256-CTR, one pass": aes}, reps)
        finally:
            vms.destroy(client, vm)
    C.check_no_children()

    shallow = C.median(results["shallow rekey"])
    deep = C.median(results["deep rekey"])
    aes_s = C.median(results["AES-256-CTR, one pass"])
    print(f"\n{reps} of each, order rotated; disk {mib} MiB")
    for name, samples in results.items():
        print(f"  {name:24} median {C.median(samples) * 1000:9.2f} ms   min {min(samples) * 1000:9.2f} ms   "
              f"max {max(samples) * 1000:9.2f} ms")
        report.figures[name] = {"median_ms": round(C.median(samples) * 1000, 3), "n": len(samples)}
    deep_mibs = mib / deep
    data_mibs = mib / max(deep - shallow, 1e-9)
    aes_mibs = mib / aes_s
    report.figure("deep_MiB_per_s", round(deep_mibs, 1), f"{deep_mibs:.1f} MiB/s deep rekey, whole operation")
    report.figure("deep_data_MiB_per_s", round(data_mibs, 1),
                  f"{data_mibs:.1f} MiB/s deep rekey, data part only (deep minus shallow time)")
    report.figure("aes_MiB_per_s", round(aes_mibs, 1), f"{aes_mibs:.1f} MiB/s AES-256-CTR single pass (cryptography)")
    report.ratio("deep/shallow rekey time", deep / shallow)
    report.ratio("deep rekey throughput / AES-CTR throughput", deep_mibs / aes_mibs,
                 note="a deep rekey is 2 AES passes (decrypt + encrypt): 0.5 is the ceiling")
    report.ratio("deep rekey data throughput / AES-CTR throughput", data_mibs / aes_mibs)
    report.finish(args.json)


if __name__ == "__main__":
    main()
