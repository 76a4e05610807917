"""Start the server: `python3 -m klr [HANDLER]`, or `/opt/aws-custom-runtime` in an image.

A handler given as the only argument (an image's CMD, as with AWS's base images) wins over
`_HANDLER`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from klr.config import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Settings
from klr.errors import SettingsError
from klr.front import FrontDoor
from klr.http import HttpServer, Limits
from klr.invokers import InvokerPool
from klr.log import log, platform, stdout
from klr.modes import mode_for
from klr.runtime_api import RuntimeApi


def find_bootstrap(settings: Settings) -> str | None:
    """Lambda's search order: the function's own bootstrap, a layer's, then the runtime's."""
    for folder in (settings.task_root, "/opt", settings.runtime_dir):
        path = os.path.join(folder, "bootstrap")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


# The runtime is the server's own child: it may keep a connection idle while the function runs
# and stream a response for as long as the function's timeout allows.
RUNTIME_API_LIMITS = Limits(
    max_body=MAX_RESPONSE_BYTES,
    idle_timeout=None,
    body_timeout=None,
    write_timeout=None,
    max_connections=64,
)


def front_limits(settings: Settings) -> Limits:
    return Limits(
        max_head=settings.max_header_bytes,
        max_body=MAX_REQUEST_BYTES,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        body_timeout=settings.body_timeout,
        write_timeout=settings.write_timeout,
        max_connections=settings.max_connections,
    )


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


async def serve(settings: Settings, bootstrap: str) -> None:
    platform.configure(settings.log_format, settings.log_level)
    await stdout.open()
    try:
        await _serve(settings, bootstrap)
    finally:
        await stdout.close()


async def _serve(settings: Settings, bootstrap: str) -> None:
    pool = InvokerPool(settings, bootstrap)
    runtime_apis = []
    for invoker in pool.invokers:
        api = RuntimeApi(invoker)
        server = HttpServer(api.handle, RUNTIME_API_LIMITS, api.streams, api.on_broken)
        try:
            await server.start("127.0.0.1", invoker.port)
        except OSError as error:
            raise SettingsError(
                f"cannot listen on 127.0.0.1:{invoker.port} for invoker {invoker.index}'s "
                f"Runtime API ({error.strerror}): choose free ports with KLR_RUNTIME_API_PORT"
            ) from None
        runtime_apis.append(server)
    front = HttpServer(FrontDoor(settings, pool, mode_for(settings)).handle, front_limits(settings))
    try:
        await front.start(None, settings.port)
    except OSError:  # no IPv6 in this network namespace: IPv4 alone
        await front.start("0.0.0.0", settings.port)
    pool.start()
    log(
        f"klr: serving {settings.handler or bootstrap} on port {settings.port} "
        f"({settings.event_type} events, {settings.invoker_count} invokers, "
        f"timeout {settings.timeout:g} s)"
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log(f"klr: stopping: draining {pool.in_flight} invocations")
    front.close()
    if not await pool.drain(settings.shutdown_timeout):
        log(
            f"klr: {pool.in_flight} invocations still running after "
            f"{settings.shutdown_timeout:g} s: stopping them"
        )
    await pool.stop()
    await front.wait_idle(1.0)
    for server in runtime_apis:
        server.close()
    log("klr: stopped")


def return_freed_memory() -> None:
    """Fix glibc's mmap threshold at its start value. Left dynamic, glibc raises it the first
    time a large buffer (a body of megabytes) is freed, and from then on keeps such buffers in
    the heap: the server's memory would not come back after large requests or slow clients."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    except (ImportError, OSError, AttributeError):  # not glibc: its allocator decides
        pass


def main() -> None:
    return_freed_memory()
    try:
        settings = Settings.from_env(handler=" ".join(sys.argv[1:2]))
    except SettingsError as error:
        sys.exit(f"klr: {error}")
    bootstrap = find_bootstrap(settings)
    if not bootstrap:
        sys.exit(
            f"klr: no executable bootstrap in {settings.task_root}, /opt or {settings.runtime_dir}: "
            "build FROM a klr language image, or add an executable file named 'bootstrap' "
            "to your function"
        )
    try:
        asyncio.run(serve(settings, bootstrap))
    except SettingsError as error:
        sys.exit(f"klr: {error}")


if __name__ == "__main__":
    main()
