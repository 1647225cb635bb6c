"""``python -m genoflow.serving [--host H] [--port P]``: run the model API with uvicorn.

Settings come from the environment (`ServingSettings.from_env`); ``--host``/``--port`` override
``GENOFLOW_SERVING_HOST``/``GENOFLOW_SERVING_PORT``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from genoflow.serving.settings import ServingSettings


def main(argv: list[str] | None = None) -> int:
    try:
        settings = ServingSettings.from_env()
    except ValueError as error:
        print(f"genoflow serving: error: {error}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m genoflow.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=settings.host, help=f"listen address (default {settings.host})")
    parser.add_argument("--port", type=int, default=settings.port, help=f"listen port (default {settings.port})")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if not settings.has_api_keys:
        print("genoflow serving: error: set GENOFLOW_API_KEYS_FILE (a file of `caller: sha256:<hex>` lines) or "
              "GENOFLOW_API_KEYS (comma-separated) to the keys clients send as X-API-Key or Authorization: Bearer",
              file=sys.stderr)
        return 2
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    from genoflow.serving.app import create_app

    # uvicorn's access log is off: ours (genoflow.serving.access) logs route templates, not raw paths.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level,
                access_log=False, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
