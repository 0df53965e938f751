"""The trading core: orders, venues, risk, RFQs, quotes, trades, clearing and audit.

Plain Python driven by events. Nothing here imports QuickFIX, opens a socket, a file or a
database, or starts a thread: state machines take events and return events, and the edges in
``gateway/`` do the I/O (``gateway/fix``, ``gateway/clearinghouse``, ``gateway/audit``, ...)
through the ports defined here, such as ``OutboxRepository``, ``ClearingSender`` and
``BundleFiles``. Of ``threading`` only a lock is used, in ``InMemoryOutbox``, so that in-memory
repository can be shared between threads. The only package of ours imported here is
``fixspec``. ``tests/test_layers.py`` checks all of this on every module's imports.
"""
