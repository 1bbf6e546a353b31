"""Observers of every vCenter call the operations layer makes: a registry below both sides.

harness/vsphere/client.py wraps each call in `observed(title, args)` without knowing who
listens; evidence writers subscribe (harness/evidence/allure_evidence.py turns each call into an
Allure step with its arguments, registered by the pytest plugin at configure). So the operations
layer imports no evidence writer, and a run without subscribers (`vcrypt verify-config`) pays
nothing. An observer is a context manager factory: it is entered before the call and left with
the call's outcome, so a fault reaches every observer's `__exit__`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ContextManager

CallObserver = Callable[[str, Mapping[str, Any]], ContextManager[Any]]

_observers: dict[str, CallObserver] = {}


def subscribe(name: str, observer: CallObserver) -> None:
    """Register (or replace) the observer known as `name`: subscribing twice keeps one."""
    _observers[name] = observer


def unsubscribe(name: str) -> None:
    _observers.pop(name, None)


@contextlib.contextmanager
def observed(title: str, args: Mapping[str, Any]) -> Iterator[None]:
    """Run the block inside every subscribed observer, in subscription order (the first outermost).

    `args` are the call's summarized arguments (harness.evidence.recorder.summarize); observers
    redact them before they show them.
    """
    with contextlib.ExitStack() as stack:
        for observer in list(_observers.values()):
            stack.enter_context(observer(title, args))
        yield
