"""The suites' fixtures come from the vcrypt plugin (harness/fixtures.py): inventory, vc, vc_b,
place, policies_a, kms, scratch, serial, provider, provider_b, dedicated_provider, encrypted_vm."""
