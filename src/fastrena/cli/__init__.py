"""The ``fastrena`` command line (see :mod:`fastrena.cli.main`)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
