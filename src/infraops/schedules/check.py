"""A declaration against the code: its workflow, its task queue, its input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from infraops.schedules.model import Declaration

if TYPE_CHECKING:
    from infraops.worker.roles import Role, Workflow


def registry() -> Mapping[str, Role]:
    """Every role the worker can host (imported late: it pulls in all roles)."""
    from infraops.worker.roles import ROLES

    return ROLES


def find_workflow(
    name: str, task_queue: str | None, roles: Mapping[str, Role]
) -> Workflow | None:
    """The registered workflow `name`, served on `task_queue` if one is given."""
    for role in roles.values():
        if task_queue is not None and role.task_queue != task_queue:
            continue
        for workflow in role.workflows:
            if workflow.name == name:
                return workflow
    return None


def task_queues(roles: Mapping[str, Role]) -> frozenset[str]:
    return frozenset(role.task_queue for role in roles.values())


def problems(
    declarations: Iterable[Declaration],
    roles: Mapping[str, Role],
    sources: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per problem: unknown workflow, wrong queue, invalid input."""
    found: list[str] = []
    for declaration in declarations:
        where = (sources or {}).get(declaration.id, declaration.id)
        found += [f"{where}: {problem}" for problem in _check(declaration, roles)]
    return found


def _check(declaration: Declaration, roles: Mapping[str, Role]) -> list[str]:
    serving = [
        role
        for role in roles.values()
        if any(workflow.name == declaration.workflow for workflow in role.workflows)
    ]
    if not serving:
        known = sorted(w.name for role in roles.values() for w in role.workflows)
        return [
            f"workflow {declaration.workflow!r} is not registered in any role "
            f"(registered: {', '.join(known) or 'none'})"
        ]
    workflow = find_workflow(declaration.workflow, declaration.task_queue, roles)
    if workflow is None:
        queues = ", ".join(f"{r.task_queue} (role {r.name})" for r in serving)
        return [
            f"task_queue {declaration.task_queue!r}: no worker there runs "
            f"{declaration.workflow}; it is served on {queues}"
        ]
    error = input_error(workflow.config, declaration.input)
    return [f"input: {error}"] if error else []


def input_error(config: type[Any], document: Any) -> str | None:
    """Why `document` is not a valid `config`, naming each field; None if it is."""
    try:
        TypeAdapter(config).validate_python(document)
    except ValidationError as error:
        from infraops.config import describe_validation_error

        return f"invalid {config.__name__}: {describe_validation_error(error)}"
    return None


def canonical_input(config: type[Any] | None, document: Any) -> Any:
    """`document` with the workflow's defaults filled in, to compare by meaning.

    A document the model refuses (or without a model) is compared as written.
    """
    if config is None:
        return document
    adapter = TypeAdapter(config)
    try:
        return adapter.dump_python(adapter.validate_python(document), mode="json")
    except ValidationError:
        return document
