"""The throwaway certificate of a bench run, from the instrument (pushserve/bench/certs.py)."""

from pushserve.bench.certs import CertPair, make_cert

__all__ = ["CertPair", "make_cert"]
