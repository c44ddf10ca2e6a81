"""Serves a sandbox in the foreground: `python -m integrations.sandbox shopify --orders N`.

Prints one JSON line (`url`, `token`, `api_version`) once the server accepts
connections, then serves until interrupted or sent SIGTERM. Benchmarks run it as a
subprocess so the sandbox's memory is not counted with Clerk's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence

from integrations.sandbox.faults import Faults
from integrations.sandbox.server import serve_in_thread
from integrations.sandbox.shopify import (
    DEFAULT_TOKEN,
    ShopifySandbox,
    create_shopify_app,
)
from integrations.sandbox.store import StoreSpec, generate_store


def build_shopify_sandbox(orders: int = 2000, seed: int = 7, fault_rate: float = 0.0,
                          restore_rate: float = 100.0, token: str = DEFAULT_TOKEN) -> ShopifySandbox:
    """A Shopify sandbox over a freshly seeded store, with `fault_rate` spread over every fault kind."""
    store = generate_store(StoreSpec(seed=seed, orders=orders))
    faults = Faults.uniform(fault_rate, seed=seed) if fault_rate else None
    return create_shopify_app(store, token=token, faults=faults, restore_rate=restore_rate)


def add_shopify_arguments(parser: argparse.ArgumentParser) -> None:
    """The Shopify sandbox's options, for this module and for `clerk sandbox`."""
    parser.add_argument("--orders", type=int, default=2000, help="orders in the seeded store")
    parser.add_argument("--seed", type=int, default=7, help="the store's seed")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests given a fault")
    parser.add_argument("--restore-rate", type=float, default=100.0, help="query-cost points restored a second")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the access token to accept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox", description=__doc__.splitlines()[0])
    vendors = parser.add_subparsers(dest="vendor", required=True)
    add_shopify_arguments(vendors.add_parser("shopify", help="Shopify Admin GraphQL API"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = build_shopify_sandbox(args.orders, args.seed, args.fault_rate, args.restore_rate, args.token)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = serve_in_thread(sandbox, host=args.host, port=args.port)
    print(json.dumps({"vendor": "shopify", "url": server.url, "token": sandbox.token,
                      "api_version": sandbox.api_version}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
