"""pushserve: a TLS-only HTTP/2 asset server with server push, 103 Early Hints and HTTP/1.1 fallback."""

__version__ = "0.1.0"
