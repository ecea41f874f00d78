"""The long-lived worker process: one client, one Worker per role."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from infraops.worker.clients import Clients
from infraops.worker.roles import Role

log = logging.getLogger(__name__)


def build_worker(
    client: Client,
    role: Role,
    clients: Clients,
    *,
    task_queue: str | None = None,
    shutdown_grace: float = 30.0,
) -> Worker:
    """A Worker polling `role`'s task queue (or `task_queue`, for a private one)."""
    return Worker(
        client,
        task_queue=task_queue or role.task_queue,
        workflows=[workflow.definition for workflow in role.workflows],
        activities=list(role.activities(clients)),
        graceful_shutdown_timeout=timedelta(seconds=shutdown_grace),
        max_heartbeat_throttle_interval=timedelta(seconds=5),
    )


async def start_up(roles: Sequence[Role], clients: Clients) -> None:
    """Run each role's start-up hook (migrations and the like) before polling."""
    for role in roles:
        if role.startup is not None:
            await role.startup(clients)


@asynccontextmanager
async def hosted(
    client: Client, roles: Sequence[Role], *, task_queue: str | None = None
) -> AsyncIterator[list[Worker]]:
    """Run workers for `roles` in the background for the duration of the block."""
    clients = Clients()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(clients.aclose)
        await start_up(roles, clients)
        workers = [
            build_worker(client, role, clients, task_queue=task_queue) for role in roles
        ]
        for worker in workers:
            await stack.enter_async_context(worker)
        yield workers


async def serve(client: Client, roles: Sequence[Role], shutdown_grace: float) -> None:
    """Poll until SIGTERM or SIGINT, then let running activities finish."""
    clients = Clients()
    await start_up(roles, clients)
    workers = [
        build_worker(client, role, clients, shutdown_grace=shutdown_grace)
        for role in roles
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    for role in roles:
        log.info("polling %s for role %s", role.task_queue, role.name)
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait(
        [stopped, *running], return_when=asyncio.FIRST_COMPLETED
    )
    log.info("shutting down; running activities have %.0f s to finish", shutdown_grace)
    await asyncio.gather(*(worker.shutdown() for worker in workers))
    await asyncio.gather(*running, return_exceptions=True)
    await clients.aclose()
    for task in done:
        if task is not stopped and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
