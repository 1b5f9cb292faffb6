"""Dynamic routes of the example site, mounted from pushserve.toml.  Folders starting with ``_``
are never served as files, so this code stays private."""
