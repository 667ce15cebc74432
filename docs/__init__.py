"""The documentation (markdown, built by mkdocs); a package only so that its conftest.py has a name of its own."""
