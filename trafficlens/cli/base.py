"""The command group and what every command shares: the lake option, one-line errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from trafficlens import __version__
from trafficlens.errors import OptionError, TrafficlensError, disk_full
from trafficlens.store import DEFAULT_LAKE

LAKE_HELP = f"Lake folder, or URI (s3://, gs://, hdfs://, file://) (default: $TRAFFICLENS_LAKE or ./{DEFAULT_LAKE})."


def default_lake() -> str:
    return os.environ.get("TRAFFICLENS_LAKE") or DEFAULT_LAKE


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors a user can cause become one line, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrafficlensError as e:
            # One line, even when the message quotes a library's (a YAML parser's) several.
            raise click.ClickException(" ".join(str(e).split())) from None
        except KeyboardInterrupt:
            click.echo("interrupted; the lake is as it was before this run", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        except OSError as e:
            # A file or folder the user named cannot be read or written (a full disk, no
            # permission, a read-only file system): the system's reason and the path are the message.
            full = disk_full(e)
            if full is not None:
                raise click.ClickException(str(full)) from None
            if e.filename is None:
                raise
            raise click.ClickException(f"{e.filename}: {e.strerror or e}") from None

    return wrapper


def _one_line(e: click.UsageError) -> click.UsageError:
    """A usage error (bad option value, missing argument, unknown command) as one line, like every
    other error: without a context, click shows no usage block before it."""
    if e.ctx is None:
        return e
    return click.UsageError(f"{e.format_message()} (`{e.ctx.command_path} --help` lists the options)")


# Bare `trafficlens` prints the help: that usage "error" stays as click shows it.
_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _OneLineUsage(click.Command):
    """Usage errors raised while parsing a command's arguments come out as one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _HELP:
            raise
        except click.UsageError as e:
            raise _one_line(e) from None


class Command(_OneLineUsage):
    pass


class Group(_OneLineUsage, click.Group):
    command_class = Command
    group_class = type  # subgroups (`ranges`) are of this class too

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            raise _one_line(e) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trafficlens")
def main() -> None:
    """trafficlens: how much of a site's traffic is human, crawler, scraper or AI agent, who runs
    it, whether it is who it claims to be, and which of it is malicious, from its access logs."""


def emit(text: str, out: str | None, what: str) -> None:
    """Text to a file (saying so on stderr) or to the terminal."""
    if out:
        from pathlib import Path

        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise disk_full(e, out) or OptionError(f"--out {out}: cannot write it ({e.strerror})") from None
        click.echo(f"{what} written to {out}", err=True)
    else:
        click.echo(text, nl=False)
