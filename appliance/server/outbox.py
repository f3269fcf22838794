"""The durable queue of events and samples waiting for the manager: bounded, ordered, and
announcing its own overflow with an event."""

from __future__ import annotations

import logging
import threading
from typing import Any

from appliance.server.config import OutboxLimits
from appliance.server.events import make_event
from appliance.server.store import EVENT, SAMPLE, Store, sample_item_id

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, store: Store, limits: OutboxLimits, server_uuid: str) -> None:
        self.store = store
        self.limits = limits
        self.server_uuid = server_uuid
        self.wakeup = threading.Event()
        self._lock = threading.Lock()

    def _cap(self, kind: str) -> int:
        return self.limits.max_events if kind == EVENT else self.limits.max_samples

    def add_event(self, event: dict[str, Any], vm_state: tuple[str, str] | None = None) -> None:
        """Queue an event; ``vm_state`` (uuid, state) is stored with it atomically."""
        self._add(EVENT, [(event["id"], event)], vm_state)

    def add_samples(self, samples: list[dict[str, Any]]) -> None:
        self._add(SAMPLE, [(sample_item_id(s), s) for s in samples])

    def _add(
        self, kind: str, items: list[tuple[str, dict[str, Any]]], vm_state: tuple[str, str] | None = None
    ) -> None:
        with self._lock:
            dropped = self.store.enqueue(kind, items, self._cap(kind), vm_state)
            if dropped:
                self._overflowed(kind, dropped)
        self.wakeup.set()

    def _overflowed(self, kind: str, dropped: int) -> None:
        """Tell the manager once per overflow episode (until the queue drains to half)."""
        flag = f"outbox_overflow_{kind}"
        total = int(self.store.get_meta(flag + "_dropped") or 0) + dropped
        self.store.set_meta(flag + "_dropped", str(total))
        log.warning("outbox full: dropped %d oldest %s(s) (%d this episode)", dropped, kind, total)
        if self.store.get_meta(flag) == "1":
            return
        self.store.set_meta(flag, "1")
        what = "events" if kind == EVENT else "statistics samples"
        event = make_event(
            "agent.outbox_overflow",
            "server",
            self.server_uuid,
            f"the agent's outbox is full ({self._cap(kind)} {what}) because the manager is unreachable;"
            f" the oldest {what} are being dropped",
            "warning",
        )
        # Sticky: later overflow drops the oldest ordinary events, never this notice.
        self.store.enqueue(EVENT, [(event["id"], event)], self.limits.max_events, sticky=True)

    def acked(self, kind: str, seqs: list[int]) -> None:
        with self._lock:
            self.store.ack(seqs)
            flag = f"outbox_overflow_{kind}"
            if self.store.get_meta(flag) == "1" and self.store.count(kind) <= self._cap(kind) // 2:
                self.store.set_meta(flag, "0")
                self.store.set_meta(flag + "_dropped", "0")

    def pending(self) -> dict[str, int]:
        return {"events": self.store.count(EVENT), "samples": self.store.count(SAMPLE)}
