"""Small readers for the on-disk formats of the standard image data sets.

Each reader takes a path, checks the file against the format's specification and returns numpy
arrays; a file that does not match raises :class:`genood.data.errors.DataFormatError` naming the
file and what was expected. Data files are untrusted input: nothing here executes code from them
(pickled formats go through :mod:`genood.data.formats.safe_pickle`).
"""
