"""The Starlette application of ``composer serve``: the page, its JSON API and the downloads.

Routes: ``GET /`` the page; ``GET /static/…`` its script and style; ``GET /api/info``
the model's styles and the server's limits; ``POST /api/generate`` and
``POST /api/continue`` (form fields, and for continue note text or one uploaded file)
answer the candidates' SVG pages and their download addresses; ``GET
/files/<id>/<n>/<name>`` a candidate's MIDI, MusicXML, PDF or WAV, made on first request.
Errors are JSON ``{"error": message}``, the message the CLI prints after ``error:``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from composer.errors import ComposerError, TimeLimitError
from composer.web.limits import RequestGuard, too_large_message
from composer.web.store import FILES, ResultStore
from composer.web.studio import Deadline, Prompt, Studio, WebConfig, parse_request

if TYPE_CHECKING:
    from composer.api import Composer

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024  # form fields and multipart framing, on top of the upload itself
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "  # verovio's <style>
       "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

__all__ = ["LOCAL_HOSTS", "WebConfig", "create_app", "is_local_host"]


def is_local_host(host: str) -> bool:
    """True for a name or address that only this machine can reach."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SecurityHeaders:
    """Headers every answer carries: no sniffing, no framing, scripts from this server only."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"content-security-policy", CSP.encode())]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.strip().splitlines()[0] if message.strip() else "error"},
                        status_code=status)


def create_app(config: WebConfig | None = None, *, host: str = "127.0.0.1",
               on_ready: Callable[[], None] | None = None, composer: Composer | None = None) -> Starlette:
    """The application; ``host`` is the address it is served on (a local one limits the
    Host names it answers to); ``on_ready`` is called once the model is loaded; ``composer``
    is the model, loaded already (else it is loaded when the server starts)."""
    config = config or WebConfig()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        root = config.root or Path(tempfile.mkdtemp(prefix="composer-serve-"))
        store = ResultStore(root, config.max_results, config.result_lifetime, config.max_result_bytes)
        studio = Studio(config, store, composer)
        state["studio"] = app.state.studio = studio
        try:
            studio.reader.start()  # music21 imports in the child while the model loads here
            await anyio.to_thread.run_sync(studio.load)
            threading.Thread(target=studio.warm_up, name="composer-warm-up", daemon=True).start()
            if on_ready is not None:
                on_ready()
            yield
        finally:
            await anyio.to_thread.run_sync(studio.close)
            store.close()
            if config.root is None:
                shutil.rmtree(root, ignore_errors=True)

    def studio() -> Studio:
        return state["studio"]

    async def run(job: Callable[[Deadline], Any]) -> tuple[Any, JSONResponse | None]:
        """Run ``job`` in a worker thread within the time limit: (its answer, None) or (None, error)."""
        limit = studio().time_limit
        deadline = Deadline(limit)
        with anyio.move_on_after(limit) as scope:
            try:
                return await anyio.to_thread.run_sync(job, deadline, abandon_on_cancel=True), None
            except ComposerError as exc:
                return None, error_response(504 if isinstance(exc, TimeLimitError) else 400, str(exc))
            except MemoryError:
                return None, error_response(500, "out of memory (the input is too big for this machine)")
            except Exception as exc:
                log.exception("internal error")
                return None, error_response(500, f"internal error ({type(exc).__name__}: {exc}); "
                                                 "see the server's log")
        deadline.cancelled.set()  # the abandoned worker stops at its next step
        if scope.cancelled_caught:
            return None, error_response(504, str(deadline.error()))
        return None, error_response(500, "internal error (no answer)")

    async def index(request: HttpRequest) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def info(request: HttpRequest) -> Response:
        return JSONResponse(studio().info())

    async def form_fields(request: HttpRequest) -> dict[str, Any]:
        async with request.form(max_files=1, max_fields=20, max_part_size=FORM_OVERHEAD) as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("file")
            if isinstance(upload, UploadFile) and (upload.filename or upload.size):
                data = await upload.read(config.max_upload_bytes + 1)
                fields["_file"] = (upload.filename or "", data)
        return fields

    async def read_request(request: HttpRequest, default_bars: int
                           ) -> tuple[dict[str, Any], Any] | Response:
        """The form's fields and the settings they ask for, or the 400 that says what is wrong."""
        fields = await form_fields(request)
        try:
            return fields, parse_request(fields, config, default_bars=default_bars)
        except ComposerError as exc:
            return error_response(400, str(exc))

    async def generate(request: HttpRequest) -> Response:
        read = await read_request(request, default_bars=16)
        if isinstance(read, Response):
            return read
        answer, error = await run(partial(studio().generate, read[1]))
        return error or JSONResponse(answer)

    async def continue_(request: HttpRequest) -> Response:
        read = await read_request(request, default_bars=8)
        if isinstance(read, Response):
            return read
        fields, wanted = read
        prompt = Prompt(text=fields.get("notes"))
        if "_file" in fields:
            filename, data = fields["_file"]
            if len(data) > config.max_upload_bytes:
                return error_response(413, too_large_message(config.max_upload_bytes))
            prompt = Prompt(data=data, filename=filename)
        answer, error = await run(partial(studio().continue_, wanted, prompt))
        return error or JSONResponse(answer)

    async def download(request: HttpRequest) -> Response:
        params = request.path_params
        found = studio().store.file(params["rid"], params["index"], params["name"])
        if found is None:
            return error_response(404, "no such file: results are kept for "
                                       f"{config.result_lifetime / 60:g} minutes; generate again")
        result, number, name = found
        path, error = await run(partial(studio().file, result, number, name))
        if error is not None:
            return error
        _, media_type, suffix = FILES[name]
        count = len(result.candidates)
        filename = f"{result.stem}-{number}{suffix}" if count > 1 else f"{result.stem}{suffix}"
        return FileResponse(path, media_type=media_type, filename=filename)

    async def http_error(request: HttpRequest, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail))

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/continue", continue_, methods=["POST"]),
        Route("/files/{rid}/{index}/{name}", download),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    allowed = LOCAL_HOSTS | {host.strip("[]").lower()} if is_local_host(host) else None
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(RequestGuard, max_bytes=config.max_upload_bytes + FORM_OVERHEAD,
                   message_bytes=config.max_upload_bytes, allowed_hosts=allowed),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error})


def serve(config: WebConfig, host: str = "127.0.0.1", port: int = 8000,
          on_ready: Callable[[], None] | None = None) -> None:
    """Serve the app with uvicorn until interrupted (Ctrl+C); ``on_ready`` is called once it listens."""
    import uvicorn

    from composer.api import Composer

    check_address(host, port)  # a port in use is said before the model loads
    composer = Composer.load(config.model)  # a missing or broken model is said here, in one line
    app = create_app(config, host=host, composer=composer)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready()

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          limit_concurrency=64, timeout_graceful_shutdown=5)).run()


def check_address(host: str, port: int) -> None:
    """``ConfigError`` (one line) where this process cannot listen on ``host:port``."""
    import socket

    from composer.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc.strerror or exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} "
                              f"({exc.strerror or exc})") from None
