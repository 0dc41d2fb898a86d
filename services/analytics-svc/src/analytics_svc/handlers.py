"""One handler per consumed event type: append the event's fact rows, nothing else.

No handler reads before it writes: a handler only adds the event's rows to the
transaction's buffer, and the consumer batch is written with one INSERT per fact table when
its transaction commits. The KPIs are aggregated at query time and RFM/CLV/churn by the
scheduled jobs. The rebuild replays through the same `facts_of` mapping (rebuild.py).
"""

from __future__ import annotations

from memberflow_events.envelope import Envelope
from memberflow_events.inbox import Handler, HandlerContext

from analytics_svc import repository
from analytics_svc.facts import PROJECTED_TYPES, RawEvent


async def append_event_facts(ctx: HandlerContext, event: Envelope) -> None:
    """Record the event's facts (keyed by its own ids, so a replay is a no-op); they are
    written with the rest of the consumer batch, one INSERT per table, at commit."""
    repository.buffer_facts(ctx.session).extend(RawEvent.of(event))


# Every projected type has the same shape of work; the mapping lives in facts.FACTS.
HANDLERS: dict[str, Handler] = dict.fromkeys(PROJECTED_TYPES, append_event_facts)
