"""Package data: the published reference tables (one CSV per table) and the CI smoke reference (JSON).

Read through :mod:`harness.results.reference` (``importlib.resources``), so they are found the same way in a
checkout, an editable install and an installed wheel. See ``README.md`` in this folder for the columns.
"""
