"""Benchmarks for pushserve: throughput against peer servers and page loads under a chosen RTT.

Run ``python -m benchmarks --help``.  Everything here talks to 127.0.0.1 only, and every load is
bounded (a request count or a duration)."""
