"""uvicorn or granian? The same applications — the ceiling (`bench/ceiling.py`) and
marketmeter on SQLite — served by each, one worker, the same pre-signed requests,
alternating rounds; the best round of each. `python bench/servers.py [--rounds 3]`.

marketmeter is served by uvicorn (with its one-write protocol, `server/one_write.py`);
this measures whether granian, as packaged, would serve it faster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BIN,
    HTTP_PROTOCOL,
    WARM_UP_SECONDS,
    Databases,
    Process,
    RequestFiles,
    free_port,
    run_wrk,
    uvicorn_options,
)

from marketmeter.server.runner import APP_FACTORY  # noqa: E402


def command(server: str, app: str, port: int) -> list[str]:
    target = "bench.ceiling:app" if app == "ceiling" else APP_FACTORY
    factory = [] if app == "ceiling" else ["--factory"]
    if server == "uvicorn":
        http = "httptools" if app == "ceiling" else HTTP_PROTOCOL
        return [str(BIN / "uvicorn"), target, *factory, *uvicorn_options(port, 1, http)]
    return [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",  # (granian writes no access log unless asked)
        "warning",
        *factory,
        target,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None or not (BIN / "granian").exists():
        sys.exit("needs wrk and granian (make bench installs both)")
    work = Path(tempfile.mkdtemp(prefix="marketmeter-servers-"))
    try:
        dbs = Databases(work)
        files = RequestFiles(work, batch_count=20_000, meter_count=60_000)
        best: dict[tuple[str, str, str], float] = {}
        for _ in range(args.rounds):
            for app in ("ceiling", "marketmeter"):
                for operation in ("batch", "meter"):
                    for server in ("uvicorn", "granian"):
                        paths = files.ready()
                        port = free_port()
                        argv = command(server, app, port)
                        env = {"PYTHONPATH": str(ROOT), "MARKETMETER_LOG_LEVEL": "warning"}
                        if app == "marketmeter":
                            env["MARKETMETER_DATABASE_URL"] = dbs.fresh("sqlite")
                        process = Process(argv, port, work / f"{server}.log", env=env)
                        process.start(health="/health" if app == "marketmeter" else "")
                        try:
                            run_wrk(
                                port, paths[f"{operation}-warm"], WARM_UP_SECONDS, args.connections
                            )
                            stats = run_wrk(port, paths[operation], args.seconds, args.connections)
                        finally:
                            process.stop()
                        rate = stats["requests"] / (stats["duration_us"] / 1e6)
                        errors = stats["status_errors"] + stats["timeouts"]
                        print(
                            f"· {app}, {operation}, {server}: {rate:,.0f} requests/s, "
                            f"errors {errors}",
                            flush=True,
                        )
                        key = (app, operation, server)
                        best[key] = max(best.get(key, 0.0), rate)
        print("\n| application | operation | uvicorn req/s | granian req/s | granian ÷ uvicorn |")
        print("|---|---|---:|---:|---:|")
        for app in ("ceiling", "marketmeter"):
            for operation in ("batch", "meter"):
                u, g = best[(app, operation, "uvicorn")], best[(app, operation, "granian")]
                print(f"| {app} | {operation} | {u:,.0f} | {g:,.0f} | {g / u:.2f} |")
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
