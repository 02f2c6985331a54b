"""``syncledger serve``: the admin dashboard, its JSON API, health and metrics.

One ASGI app (``adapters.web.app``) served by uvicorn. Without
``SYNCLEDGER_DASHBOARD_TOKEN`` it binds to loopback only; with it, any
address, and every page asks for the token.
"""

from __future__ import annotations

import argparse
import os
import sys

from adapters.cli.common import EXIT_OK, EXIT_USAGE, command, open_store, port_number


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs "
                        "SYNCLEDGER_DASHBOARD_TOKEN)")
    p.add_argument("--port", type=port_number, default=8080, help="port (default 8080)")


@command("serve", "the admin dashboard and JSON API over the ledger (uvicorn)", _serve_args)
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from adapters.web.access import TOKEN_ENV, AccessError, check_binding
    from adapters.web.app import WebConfig, create_app

    token = os.environ.get(TOKEN_ENV) or None
    try:
        check_binding(args.host, token)
    except AccessError as exc:
        print(f"syncledger serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    open_store(args).close()  # a mistyped --db says so before anything listens
    app = create_app(WebConfig(db=args.db, token=token))
    print(f"syncledger serve: http://{args.host}:{args.port}/ "
          f"({'token required' if token else 'loopback only'})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
