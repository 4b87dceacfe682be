"""Fixtures of the wall and officer-PWA tests (defined in `tests.big_screen.live`)."""

from tests.big_screen.live import browser, live_server, wall_data, wall_user

__all__ = ["browser", "live_server", "wall_data", "wall_user"]
