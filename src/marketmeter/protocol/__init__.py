"""The AWS JSON 1.1 wire layer: service model, SigV4, request validation, responses,
errors and the ASGI endpoint. It calls the domain and nothing below it."""
