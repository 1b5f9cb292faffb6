"""An app module that fails while being imported."""

raise ValueError("this module is broken on purpose")
