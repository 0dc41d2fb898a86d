"""Consumed event types: none. member-svc is the source of member data and reads no topic."""

from __future__ import annotations

from collections.abc import Mapping

from memberflow_events.inbox import Handler

HANDLERS: Mapping[str, Handler] = {}
