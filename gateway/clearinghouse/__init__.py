"""The clearing bridge's I/O: what talks to a clearinghouse, and a simulated one.

* :mod:`~gateway.clearinghouse.transport` - file-drop and HTTP(S) senders, the adapters behind
  :class:`otc.clearing.delivery.ClearingSender`.
* :mod:`~gateway.clearinghouse.register` - the trade register file and ``fixbridge clearing
  reconcile``.
* :mod:`~gateway.clearinghouse.schemas` - the official XSD sets, compiled once per process from
  the configured directory; ``validate_file`` for ``fixbridge clearing validate``.
* :mod:`~gateway.clearinghouse.simulator` - a loopback clearinghouse (HTTP server thread) for
  tests, the demo and ``clearing.mode = "simulator"``.
* :mod:`~gateway.clearinghouse.demo` - sample trades through the outbox to the simulator and
  back through reconciliation.

What a message says and how its delivery proceeds is decided in ``otc.clearing``, without I/O.
"""
