"""How an SSO principal is named, in one place: pure string logic, no pyVmomi, no I/O.

It sits below both the operations layer (harness/vsphere/authz.py, re-exported there as
`authz.canonical`) and the fake (harness/fakevc/model/authorization.py), so the harness and the
fake it tests compare principals by the same rule.
"""
from __future__ import annotations


def canonical(principal: str) -> str:
    """`DOMAIN\\name` and `name@domain` name the same SSO principal; compare case-insensitively.

    Source: vSphere API reference, `vim.AuthorizationManager.Permission.principal` ("in the form of
    'login' for local or 'DOMAIN\\login' for users in a Windows domain"), while
    `vim.SessionManager.Login` takes the UPN form `name@domain` (e.g. administrator@vsphere.local,
    listed as `VSPHERE.LOCAL\\Administrator` in permissions). Case-insensitive comparison is the
    harness's choice: SSO and Active Directory names are case-insensitive, and vCenter upper-cases
    the domain when it prints one.
    """
    text = (principal or "").strip().lower()
    if "\\" in text:
        domain, _, name = text.partition("\\")
        return f"{name}@{domain}"
    return text
