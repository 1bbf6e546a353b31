"""`Secret`: a password that never prints.

Why a `str` subclass rather than pydantic's SecretStr: a password must reach pyVmomi (Login, a
ServiceLocator credential) as a string, and pyVmomi, pytest's `-l` locals, assertion messages,
JUnit and Allure all show values through `repr()`. A `str` whose repr is masked serializes to
SOAP unchanged (pyVmomi writes the characters) but prints as `Secret('********')` everywhere
a value is shown, including inside a pyVmomi data object's repr.
"""
from __future__ import annotations

MASK = "Secret('********')"


class Secret(str):
    """A string whose repr (and pydantic/pytest display) is masked; the value is still usable as str."""
    __slots__ = ()

    def __repr__(self) -> str:
        return MASK

    def reveal(self) -> str:
        """The plain value (only for a call that must send it)."""
        return str.__str__(self)
