"""Every table and its queries. Nothing else in the gateway writes SQL.

* :mod:`~gateway.store.connect`: connect and migrate (the whole schema, whoever connects);
* :mod:`~gateway.store.writer`: the writer thread that batches the order path's records;
* :mod:`~gateway.store.orders`, :mod:`~gateway.store.sessions`, :mod:`~gateway.store.trades`,
  :mod:`~gateway.store.clearing`, :mod:`~gateway.store.rfqs`: one module per aggregate, each
  with its table, its row mapping and its queries;
* :mod:`~gateway.store.columns`: column types that keep Decimals and UTC times exact.

"Database" is the SQLAlchemy ``Engine`` these take; "engine" in this project means the
negotiation engine only.
"""
