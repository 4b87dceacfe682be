"""The command-centre wall (/big-screen): unattended live view of the whole city."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Mount /big-screen and its data feeds."""
