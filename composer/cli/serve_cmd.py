"""``composer serve``: the local web app."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  composer serve                                 # then open http://127.0.0.1:8000
  composer serve --port 8080 --model models/mine
  composer serve --host 0.0.0.0                  # reachable from other machines: no login!
""")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but a loopback address opens the app to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port.")
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Model bundle folder (default: $COMPOSER_MODEL or the shipped model).")
@click.option("--max-upload-mb", type=click.FloatRange(0.01, 32), default=2.0, show_default=True,
              help="Uploads larger than this are refused unread.")
@click.option("--time-limit", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help="Seconds one request may take.")
def serve(host: str, port: int, model: Path | None, max_upload_mb: float, time_limit: float) -> None:
    """Serve the web app: write, continue, see and hear music in a browser."""
    from composer.errors import ConfigError

    try:
        from composer.web.app import check_address, is_local_host
        from composer.web.app import serve as run_server
        from composer.web.studio import WebConfig
    except ImportError as exc:
        raise ConfigError(f"composer serve needs the Python package {exc.name or 'starlette'}: "
                          "pip install starlette uvicorn python-multipart") from None
    if not is_local_host(host):
        click.echo(f"warning: --host {host} makes the app reachable from other machines; it has no "
                   "login, so anyone who can reach this port can use it", err=True)
    url_host = f"[{host}]" if ":" in host else host
    config = WebConfig(model=model, max_upload_bytes=int(max_upload_mb * 1_000_000), time_limit=time_limit)
    check_address(host, port)
    click.echo("loading the model…", err=True)

    def ready() -> None:
        click.echo(f"composer is serving on http://{url_host}:{port} (Ctrl+C to stop)", err=True)

    run_server(config, host=host, port=port, on_ready=ready)
