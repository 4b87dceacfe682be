"""Fixtures of the wall and officer-PWA tests (defined in `tests.big_screen.live`)."""

from tests.big_screen.live import wall_data, wall_user

__all__ = ["wall_data", "wall_user"]
