"""Example Imbi webhook plugins for imbi-plugin-host (docs/python-plugins.md)."""
