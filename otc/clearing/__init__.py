"""Clearing bridge: trades out to clearinghouses as FIXML / FpML, answers and registers back.

Modules, each with one role:

* :mod:`~otc.clearing.model` - value types, idempotency key, economics for reconciliation.
* :mod:`~otc.clearing.fixml`, :mod:`~otc.clearing.fpml` - build and read the wire formats.
* :mod:`~otc.clearing.codec` - trade -> message, bytes -> ack/submission (pure).
* :mod:`~otc.clearing.outbox` - the delivery state machine and its repository protocol (pure).
* :mod:`~otc.clearing.delivery` - what a sender must do: the port the transports plug into.
* :mod:`~otc.clearing.dispatcher` - drives outbox rows through the sender and repository it
  is given.
* :mod:`~otc.clearing.recon` - register format and reconciliation.

The senders (file drop, HTTP(S)), the XSD sets read from disk and the simulated clearinghouse
are adapters in ``gateway/clearinghouse``.
"""
