"""The local services, one module per service behind the protocol in ``base`` (see its docstring)."""
