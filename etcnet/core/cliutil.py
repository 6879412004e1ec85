"""What the engineer CLIs share: an argparse parser that reports instead of
exiting (so a command is a plain function returning its exit status), and JSON
output with Chinese kept readable."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

EXIT_USAGE = 2


class ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that never calls sys.exit and prints help to ``out``.

    Sub-commands made with ``add_subparsers().add_parser(..., out=out)`` are
    parsers of this class too; argparse passes the keywords through.
    """

    def __init__(self, *, out: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._out = out if out is not None else sys.stdout

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        super().print_help(file or self._out)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def print_json(out: TextIO, payload: object) -> None:
    out.write(json.dumps(payload, ensure_ascii=False))
    out.write("\n")
