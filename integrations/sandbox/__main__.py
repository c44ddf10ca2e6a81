"""Serves sandboxes in the foreground: `python -m integrations.sandbox VENDOR --orders N`.

VENDOR is `shopify`, `woocommerce`, `magento`, or `all` (the three over one seeded store,
its orders dealt among them). Prints one JSON line per sandbox (`vendor`, `url` and its
credentials) once it accepts connections, then serves until interrupted or sent SIGTERM.
Benchmarks run it as a subprocess so the sandbox's memory is not counted with Clerk's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from integrations.sandbox import magento, shopify, woocommerce
from integrations.sandbox.faults import Faults
from integrations.sandbox.server import RunningServer, serve_in_thread
from integrations.sandbox.store import StoreSpec, generate_store

VENDORS = ("shopify", "woocommerce", "magento")
APPS = {"shopify": shopify.create_shopify_app, "woocommerce": woocommerce.create_woocommerce_app,
        "magento": magento.create_magento_app}
# Each vendor's own options: (default, help). Under `all` they are spelled `--{vendor}-{option}`.
VENDOR_OPTIONS: dict[str, dict[str, tuple[Any, str]]] = {
    "shopify": {"token": (shopify.DEFAULT_TOKEN, "the access token to accept"),
                "restore_rate": (100.0, "query-cost points restored a second")},
    "woocommerce": {"key": (woocommerce.DEFAULT_KEY, "the consumer key to accept"),
                    "secret": (woocommerce.DEFAULT_SECRET, "the consumer secret to accept")},
    "magento": {"token": (magento.DEFAULT_TOKEN, "the integration access token to accept"),
                "store_code": (magento.DEFAULT_STORE_CODE, "the store view code")},
}
# What each ready line tells a client, beside `vendor` and `url`.
SHOWN = {"shopify": ("token", "api_version"), "woocommerce": ("key", "secret"), "magento": ("token", "store_code")}

Sandbox = Any  # a vendor's sandbox: an ASGI app with handles on its store


def build_sandboxes(vendors: Sequence[str], orders: int = 2000, seed: int = 7, fault_rate: float = 0.0,
                    options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Sandbox]:
    """One sandbox per vendor over one freshly seeded store, its orders dealt among them.

    Args:
        vendors: which sandboxes, each also the channel its orders are placed on.
        orders: orders in the store, all channels together.
        seed: the store's seed.
        fault_rate: share of each sandbox's requests given a fault, spread over every kind.
        options: per vendor, keyword arguments for its `create_*_app` (credentials and the like).
    """
    store = generate_store(StoreSpec(seed=seed, orders=orders, channels=tuple(vendors)))
    options = options or {}
    return {
        vendor: APPS[vendor](store if len(vendors) == 1 else store.channel(vendor),
                             faults=Faults.uniform(fault_rate, seed=seed) if fault_rate else None,
                             **options.get(vendor, {}))
        for vendor in vendors
    }


@contextmanager
def serving(sandboxes: Mapping[str, Sandbox], host: str = "127.0.0.1",
            port: int = 0) -> Iterator[dict[str, RunningServer]]:
    """Serves each sandbox on its own port (consecutive from `port`; 0 picks free ones), then stops them."""
    with ExitStack() as stack:
        for sandbox in sandboxes.values():
            if isinstance(sandbox, shopify.ShopifySandbox):
                stack.callback(sandbox.close)  # after its server stops: removes bulk export files
        yield {vendor: stack.enter_context(serve_in_thread(sandbox, host, port + index if port else 0))
               for index, (vendor, sandbox) in enumerate(sandboxes.items())}


def ready_line(vendor: str, sandbox: Sandbox, url: str) -> dict[str, Any]:
    """What a client needs to reach one sandbox: its vendor, URL and credentials."""
    return {"vendor": vendor, "url": url} | {name: getattr(sandbox, name) for name in SHOWN[vendor]}


def stop_on_signals() -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets; call it before announcing readiness, so neither is missed."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _add_arguments(parser: argparse.ArgumentParser, vendors: Sequence[str], prefixed: bool) -> None:
    parser.add_argument("--orders", type=int, default=2000, help="orders in the seeded store")
    parser.add_argument("--seed", type=int, default=7, help="the store's seed")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests given a fault")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0,
                        help="0 picks a free port" + ("; else the first of consecutive ports" if prefixed else ""))
    for vendor in vendors:
        for name, (default, text) in VENDOR_OPTIONS[vendor].items():
            flag = f"{vendor}-{name}" if prefixed else name
            parser.add_argument(f"--{flag.replace('_', '-')}", type=type(default), default=default, help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox", description=__doc__.splitlines()[0])
    vendors = parser.add_subparsers(dest="vendor", required=True)
    helps = {"shopify": "Shopify Admin GraphQL API", "woocommerce": "WooCommerce REST API v3",
             "magento": "Magento 2 REST API"}
    for vendor in VENDORS:
        _add_arguments(vendors.add_parser(vendor, help=helps[vendor]), [vendor], prefixed=False)
    _add_arguments(vendors.add_parser("all", help="all three over one shared store"), VENDORS, prefixed=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    together = args.vendor == "all"
    vendors = VENDORS if together else (args.vendor,)
    options = {vendor: {name: getattr(args, f"{vendor}_{name}" if together else name)
                        for name in VENDOR_OPTIONS[vendor]} for vendor in vendors}
    sandboxes = build_sandboxes(vendors, args.orders, args.seed, args.fault_rate, options)
    with serving(sandboxes, args.host, args.port) as servers:
        stop = stop_on_signals()
        for vendor, server in servers.items():
            print(json.dumps(ready_line(vendor, sandboxes[vendor], server.url)), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
