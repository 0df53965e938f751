"""The trading core: orders, venues, risk, RFQs, quotes, trades, clearing and audit.

Plain Python driven by events. Nothing here imports QuickFIX, opens a socket or touches a
database: state machines take events and return events, and the edges in ``gateway/`` do I/O.
"""
