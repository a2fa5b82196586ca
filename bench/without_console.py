"""`marketmeter` with the console taken out: the "before" of the console's cost to the AWS
endpoint, in the same build (the console's pair in `make bench`). The application routes
as it did before the console existed — no console branch (nor, like the served build,
a console app built before its first request).

Run as `python -m bench.without_console serve …` (arguments as `marketmeter`'s); the
change is made on import, so uvicorn's worker processes run without the console too.
Never used outside bench/.
"""

from __future__ import annotations

from typing import Any

from marketmeter import app


async def _route_without_console(
    self: app.Application, scope: Any, receive: Any, send: Any
) -> None:
    if scope["type"] == "lifespan":
        await self._lifespan(receive, send)
    elif scope["type"] == "http" and scope["path"].startswith("/sns/"):
        await self._sns(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].startswith("/admin/"):
        await self.admin(scope, receive, send)
    else:
        await self.endpoint(scope, receive, send)


app.Application.__call__ = _route_without_console  # type: ignore[method-assign]

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
