"""TLS for the FIX listener, in two halves that never meet in one module.

* :mod:`gateway.tls.context`: what the running gateway uses whatever CA issued the certificates
  (server context with CRL checks, peer identities, the certificate-to-CompID rule);
* :mod:`gateway.tls.devca`: the development CA behind ``fixbridge certs`` (issue, revoke, CRL);
* :mod:`gateway.tls.files`: where both find the files, and the error both raise.
"""
