"""The HTTP server: how `marketmeter serve` runs the application (uvicorn, uvloop,
httptools), and the protocol class that writes each response in one piece.

Imports the application only by name (the worker processes build it themselves); knows
nothing of the domain or the store.
"""
