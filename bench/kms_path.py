"""Key create+get per second: the harness's KMIP paths vs a raw PyKMIP client, on the same server.

The embedded KMS of the default inventory (a real PyKMIP server, mutual TLS 1.2) serves all
contenders; each keeps one connection open, and they alternate in blocks of `--pairs` pairs:

  raw PyKMIP (create+activate+get)   kmip.pie.client.ProxyKmipClient: Create, Activate, Get
  raw PyKMIP (create+get)            the same without Activate (informational: fewer KMIP requests)
  harness KmipClient                 harness.kms.KmipClient.create_key() (Create + Activate: vCenter's
                                     keys are usable at once) + get_key() (Get)
  fake GenerateKey + KEK fetch       CryptoManagerKmip.GenerateKey through pyVmomi and the fake vCenter
                                     (KMIP Create + Activate), then the fake's KEK fetch
                                     (harness.fakevc.kmip.keys.kek: KMIP Get), as an encrypt does

Goal: the harness at least 90% of raw (pairs/s; compared with the raw client doing the same KMIP
operations; the median of the per-round ratios, so a slow spell of a shared machine hits both).

    python bench/kms_path.py [--pairs 10] [--reps 8] [--quick]
"""
from __future__ import annotations

import contextlib
import io
from typing import Callable

import _common as C

C.quiet()

with C.warnings.catch_warnings():
    C.warnings.simplefilter("ignore")
    from kmip.core import enums  # noqa: E402
    from kmip.pie.client import ProxyKmipClient  # noqa: E402

from harness.targets.environment import open_environment  # noqa: E402
from harness.fakevc.kmip import keys as fake_keys  # noqa: E402
from harness.vsphere import keys  # noqa: E402
from harness.safety import MutationGate  # noqa: E402
from harness.vsphere.client import VCenterClient  # noqa: E402

BENCH_GATE = MutationGate(allow_mutations=True)  # benches build and change their own throwaway fakes/vcsims

USAGE = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]


def main() -> None:
    p = C.parser(__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=5, help="create+get pairs per block (default 5)")
    p.add_argument("--reps", type=int, default=16, help="blocks per contender (default 16)")
    args = p.parse_args()
    pairs = 3 if args.quick else args.pairs
    reps = 2 if args.quick else args.reps
    C.header("kms_path: key create+get per second, harness vs raw PyKMIP", pairs_per_block=pairs, blocks=reps)
    report = C.Report("kms_path")

    with open_environment(C.fake_inventory()) as env:
        kms = env.kms
        server = kms.servers["shared"]
        report.figure("server", server.address, f"{server.address} (PyKMIP, mutual TLS 1.2, the shared KMS)")
        ours = kms.client("shared")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # "Config file ... not found"
            raw = ProxyKmipClient(hostname=server.host, port=server.port, cert=str(kms.client_cert.cert_path),
                                  key=str(kms.client_cert.key_path), ca=str(kms.ca.ca_path),
                                  ssl_version="PROTOCOL_TLS", kmip_version=enums.KMIPVersion.KMIP_1_2)
        raw.open()
        fake = env.fake_vcenter("vc-a")
        admin = VCenterClient("vc-a", env.service_instance("vc-a"), env.inventory.timeouts, "fake", gate=BENCH_GATE)
        default = keys.default_provider(admin)
        if default != env.kms_endpoints["shared"].provider_id:
            report.note(f"the fake's default provider is {default}, not the shared KMS: figures compare different servers")

        def raw_full() -> None:
            uid = raw.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=USAGE)
            raw.activate(uid)
            raw.get(uid)

        def raw_min() -> None:
            uid = raw.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=USAGE)
            raw.get(uid)

        def harness_client() -> None:
            ours.get_key(ours.create_key())

        def fake_path() -> None:
            key = keys.generate_key(admin)
            with fake.lock:
                fake_keys.kek(fake, key)

        contenders: dict[str, Callable[[], None]] = {
            "raw PyKMIP (create+activate+get)": raw_full,
            "raw PyKMIP (create+get)": raw_min,
            "harness KmipClient": harness_client,
            "fake GenerateKey + KEK fetch": fake_path,
        }

        def block(fn: Callable[[], None]) -> Callable[[], float]:
            def go() -> float:
                with C.Timer() as t:
                    for _ in range(pairs):
                        fn()
                return pairs / t.s
            return go

        try:
            for fn in contenders.values():  # warm-up: connections opened, sessions established
                fn()
            results = C.alternate({name: block(fn) for name, fn in contenders.items()}, reps)
        finally:
            raw.close()
            ours.close()

    C.check_no_children()
    print(f"\n{reps} blocks of {pairs} pairs per contender, order rotated")
    print(f"  {'contender':36} {'median pairs/s':>15} {'min':>8} {'max':>8}")
    rates: dict[str, float] = {}
    for name, samples in results.items():
        rates[name] = C.median(samples)
        print(f"  {name:36} {rates[name]:15.1f} {min(samples):8.1f} {max(samples):8.1f}")
        report.figures[name] = {"median_pairs_per_s": round(rates[name], 2), "min": round(min(samples), 2),
                                "max": round(max(samples), 2), "blocks": len(samples), "pairs_per_block": pairs}
    same = "raw PyKMIP (create+activate+get)"
    for name in ("harness KmipClient", "fake GenerateKey + KEK fetch"):
        r = C.paired_ratio(results[name], results[same])
        report.ratio(f"{name} / raw (same KMIP operations)", r, ">= 0.9", r >= 0.9,
                     f"median of per-round ratios; ratio of medians {rates[name] / rates[same]:.3f}")
    report.ratio("harness KmipClient / raw create+get (no Activate)", rates["harness KmipClient"] / rates["raw PyKMIP (create+get)"],
                 note="the harness also activates each key, as vCenter's keys are usable at once")
    report.finish(args.json)


if __name__ == "__main__":
    main()
