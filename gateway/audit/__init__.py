"""The signed audit trail's I/O: the feed from every edge, the log's files and writer thread,
the signing key on disk, compliance exports and the ``fixbridge audit`` commands.

* :mod:`~gateway.audit.feed` - :class:`~gateway.audit.feed.Auditor`, what every edge of the
  process records, queued and appended by the ``audit-feed`` thread.
* :mod:`~gateway.audit.log` - :class:`~gateway.audit.log.AuditLog`, the append-only log and its
  group-commit writer thread (write, fdatasync, signed checkpoints).
* :mod:`~gateway.audit.store` - the audit directory on disk and crash recovery on open.
* :mod:`~gateway.audit.keys` - the Ed25519 signing key files: created once, loaded, checked.
* :mod:`~gateway.audit.export` - copies a time range of the log into a bundle (directory or
  ``.tar``).
* :mod:`~gateway.audit.verify` - reads a bundle directory or ``.tar`` for the core's checks.
* :mod:`~gateway.audit.receipt` - seals the log and builds a receipt from its file.
* :mod:`~gateway.audit.cli` - ``fixbridge audit keygen|export|verify|extends``.

What an entry, a checkpoint, a proof, a bundle or a receipt *is*, and how each is checked, is
decided in ``otc.audit`` without I/O.
"""
