"""smsgw: a self-hosted SMS gateway speaking the smsgo HTTP API v6.2 and SMPP 3.4."""

__version__ = "0.1.0"
