"""The web API (FastAPI), one module per role:

* :mod:`~gateway.http.app`: builds the app (middleware, problem handlers, routers);
* :mod:`~gateway.http.routes`: one ``APIRouter`` per resource;
* :mod:`~gateway.http.deps`: the ``Annotated`` dependencies routes declare (caller, services);
* :mod:`~gateway.http.services`: what the routes work with, handed to the app once;
* :mod:`~gateway.http.models`: request and response models;
* :mod:`~gateway.http.problems`: RFC 9457 problems, negotiation refusals as HTTP statuses;
* :mod:`~gateway.http.security`, :mod:`~gateway.http.middleware`, :mod:`~gateway.http.limits`:
  tokens and roles, authentication and audit around every request, request size limits;
* :mod:`~gateway.http.streams`: desk event streams (WebSocket fan-out);
* :mod:`~gateway.http.server`: uvicorn on its own thread.
"""
