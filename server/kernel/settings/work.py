"""Settings of the people's work flows: complaints, credit evaluation, messages and notices,
articles, the enterprise data interface (docs/CONFIG.md). Each section is one class here,
registered in ``server.kernel.settings`` (the ``Settings`` struct and ``_SECTIONS``)."""

from __future__ import annotations
