"""The `tams` command: up, api, worker, broker, demo, schemas."""

from __future__ import annotations

import argparse
import logging
import sys

from tams.settings import Settings


def _api(settings: Settings, _: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning",
                access_log=False)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import faust
    from prometheus_client import start_http_server

    from agents.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.api_host)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, override_logging=False)
    worker.execute_from_commandline()
    return 0


def _broker(settings: Settings, _: argparse.Namespace) -> int:
    import os

    from tams.broker import broker_command

    command = broker_command(settings.kafka_bootstrap)
    print(f"[tams] Tansu broker on {settings.kafka_bootstrap} (in-memory storage)", flush=True)
    os.execv(command[0], command)
    return 0


def _up(settings: Settings, _: argparse.Namespace) -> int:
    from tams.launcher import run_up

    return run_up(settings)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from tams.demo import run_demo

    return asyncio.run(run_demo(settings, segments=args.segments, rate=args.rate))


def _schemas(_: Settings, args: argparse.Namespace) -> int:
    from schemas.export import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tams", description="Time-addressable Media Store pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run broker, agent worker and API together (Ctrl-C stops all)").set_defaults(fn=_up)
    sub.add_parser("api", help="run the TAMS HTTP API").set_defaults(fn=_api)
    worker = sub.add_parser("worker", help="run a Faust agent worker")
    worker.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    worker.set_defaults(fn=_worker)
    sub.add_parser("broker", help="run the embedded Tansu broker in the foreground").set_defaults(fn=_broker)
    demo = sub.add_parser("demo", help="play an encoder: create a flow and publish segment events")
    demo.add_argument("--segments", type=int, default=100)
    demo.add_argument("--rate", type=float, default=25.0, help="segments per second")
    demo.set_defaults(fn=_demo)
    schemas = sub.add_parser("schemas", help="write the JSON Schemas of the topics' messages")
    schemas.add_argument("--out", default="schemas/json")
    schemas.set_defaults(fn=_schemas)
    args = parser.parse_args(argv)
    return args.fn(Settings(), args)


if __name__ == "__main__":
    sys.exit(main())
