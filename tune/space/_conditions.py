"""The `when` rules between parameters, each written once: the order parents-first (a cycle refused)
and the walk over the parameters active under some values (the one Optuna's define-by-run sampling
follows)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from joyful.errors import UserError
from tune.space._parameter import Parameter

__all__ = ["active_parameters", "when_order"]


def when_order(parameters: Iterable[Parameter]) -> tuple[Parameter, ...]:
    """`parameters` with every ``when`` parent before its children (file order otherwise).

    Raises UserError naming the cycle when the conditions form one (``parameters: 'when' conditions
    form a cycle: a -> b -> a``); the file reader puts the file in front.
    """
    parameters = tuple(parameters)
    by_name = {p.name: p for p in parameters}
    order: list[Parameter] = []
    done: set[str] = set()
    stack: list[str] = []

    def visit(p: Parameter) -> list[str] | None:
        if p.name in done:
            return None
        if p.name in stack:
            return stack[stack.index(p.name) :] + [p.name]
        stack.append(p.name)
        for parent in p.when or {}:
            if parent in by_name:
                cycle = visit(by_name[parent])
                if cycle:
                    return cycle
        stack.pop()
        done.add(p.name)
        order.append(p)
        return None

    for p in parameters:
        cycle = visit(p)
        if cycle:
            raise UserError(f"parameters: 'when' conditions form a cycle: {' -> '.join(cycle)}")
    return tuple(order)


def active_parameters(
    parameters: Iterable[Parameter], values: Mapping[str, Any]
) -> Iterator[Parameter]:
    """The parameters active under `values`, parents first: a parameter is active when each ``when``
    parent is itself active and has an allowed value in `values`.

    `values` is read as the walk goes, so define-by-run sampling can add each yielded parameter's
    value before the next one is decided; a parameter active but absent from `values` leaves its
    children inactive.
    """
    seen: dict[str, Any] = {}  # the values of the active parameters so far: what `when` may look at
    for p in when_order(parameters):
        if p.is_active(seen):
            yield p
            if p.name in values:
                seen[p.name] = values[p.name]
