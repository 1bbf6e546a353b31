"""Evidence recording: summaries are bounded and JSON-able, secrets never survive."""
from __future__ import annotations

import json

from pyVmomi import vim

from harness.evidence.recorder import Recorder, redact, register_secret, summarize


def test_secret_fields_of_data_objects_are_masked():
    spec = vim.ServiceLocator.NamePassword(username="administrator@vsphere.local", password="s3cr3t-value")
    summary = summarize(spec)
    assert summary["password"] == "***"
    assert summary["username"] == "administrator@vsphere.local"


def test_registered_secrets_are_removed_from_any_text(tmp_path):
    register_secret("canary-password-123")
    recorder = Recorder(test_id="t1")
    recorder.note("free text", "the password is canary-password-123 indeed")
    recorder.start_call("vc-a", "Login", "vim.SessionManager:SessionManager", {"pwd": summarize("canary-password-123")})
    path = recorder.write(tmp_path / "e.json")
    assert "canary-password-123" not in path.read_text()
    assert redact("x canary-password-123 y") == "x *** y"


def test_pem_private_keys_are_removed_line_by_line():
    pem = "-----BEGIN " + "PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\nQWERTYUIOPASDFGH1234567890abcdef\n-----END " + "PRIVATE KEY-----\n"
    register_secret(pem)
    assert "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" not in redact("leaked: MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg")


def test_summaries_of_lists_dicts_and_morefs_are_json():
    value = {"vm": vim.VirtualMachine("vm-1"), "list": [1, "a", vim.Folder("group-d1")], "n": None}
    json.dumps(summarize(value))
    assert summarize(vim.VirtualMachine("vm-1")) == "vim.VirtualMachine:vm-1"


def test_long_lists_are_bounded():
    assert len(summarize(list(range(100)))) == 21
