"""``syncledger serve``: the admin dashboard, its JSON API, health and metrics.

One ASGI app (``adapters.web.app``) served by uvicorn. Without
``SYNCLEDGER_DASHBOARD_TOKEN`` it binds to loopback only; with it, any
address, and every page asks for the token. ``--notify-url`` switches on
Graph change notifications (``adapters.web.notify``): the endpoint at
``/graph/notifications`` and the upkeep of one subscription per configured
mailbox.
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
    p.add_argument("--notify-url", metavar="URL",
                   help="receive Graph change notifications: the public HTTPS URL at which "
                        "Graph reaches this service's /graph/notifications (a reverse proxy "
                        "or --ssl-certfile); subscribes every configured mailbox and renews "
                        "the subscriptions before they expire (needs --config)")
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (default $SYNCLEDGER_CONFIG): the Graph app and "
                        "mailboxes, for --notify-url")
    p.add_argument("--subscription-minutes", type=int, default=4320, metavar="N",
                   help="how long each subscription is made for, renewed a day (at most "
                        "half of it) before it ends (default 4320 = 3 days; Graph allows "
                        "at most 10080 for events)")
    p.add_argument("--ssl-certfile", metavar="PEM",
                   help="serve HTTPS with this certificate (and key, or --ssl-keyfile)")
    p.add_argument("--ssl-keyfile", metavar="PEM", help="the certificate's private key")


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
    notifications = None
    mailboxes: tuple[str, ...] = ()
    if args.notify_url or args.config:
        from adapters.sync.config import ConfigError, load

        try:
            sync_config = load(args.config)
        except ConfigError as exc:
            print("syncledger serve: the configuration is incomplete (see 'syncledger "
                  "config check'):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return EXIT_USAGE
        mailboxes = sync_config.graph.mailboxes
    if args.notify_url:
        from datetime import timedelta

        from adapters.graph.client import GraphClient
        from adapters.service import metrics
        from adapters.web.notify import Notifications

        graph = GraphClient(sync_config.graph)
        metrics.count_calls(graph.session, "graph")
        try:
            notifications = Notifications(
                args.db, graph, mailboxes, notify_url=args.notify_url,
                lifetime=timedelta(minutes=args.subscription_minutes))
        except ValueError as exc:
            print(f"syncledger serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
    app = create_app(WebConfig(db=args.db, token=token, notifications=notifications,
                               mailboxes=mailboxes))
    scheme = "https" if args.ssl_certfile else "http"
    print(f"syncledger serve: {scheme}://{args.host}:{args.port}/ "
          f"({'token required' if token else 'loopback only'})"
          + (f"; Graph notifications at {args.notify_url}" if notifications else ""),
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return EXIT_OK
