"""The HTTP layer: the aiohttp app, its handlers and views, and what surrounds them
(parameters, OpenAPI, the access log, ready answers)."""
