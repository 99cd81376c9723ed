"""Per-worker recordings and their merge: a payload (one process's recording as plain data)
encoded as one JSON string for ``config.workeroutput``, decoded on the controller, and parsed
into `Lane`s, workers in number order."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dagz.trace.model import PAYLOAD_VERSION, Span
from dagz.trace.recording import Recorder, link_parents


def encode_payload(payload: Mapping[str, Any]) -> str:
    """One JSON string: what a worker puts in ``config.workeroutput`` (execnet moves one string
    far faster than a tree of small dicts and lists)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def decode_payload(data: Any) -> dict[str, Any] | None:
    """A payload from ``node.workeroutput`` (None when it is missing or not ours)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or data.get("version") != PAYLOAD_VERSION:
        return None
    if not isinstance(data.get("spans"), list):
        return None
    return data


class Lane:
    """One process's recording, parsed: its payload's metadata and its spans."""

    __slots__ = ("lane", "main_thread", "payload", "spans", "worker_num")

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload
        self.lane = str(payload.get("lane", "?"))
        num = payload.get("worker_num")
        self.worker_num = num if isinstance(num, int) else None
        self.main_thread = payload.get("main_thread")
        self.spans = [Span.from_wire(row) for row in payload.get("spans", ())]

    @classmethod
    def of_recorder(cls, rec: Recorder) -> Lane:
        """This process's lane, without the round trip through rows."""
        rec.drain()
        link_parents(rec.spans)
        meta = {
            "version": PAYLOAD_VERSION,
            "lane": rec.lane,
            "worker_num": rec.worker_num,
            "pid": rec.pid,
            "main_thread": rec.main_thread,
            "dropped": rec.dropped,
            "convert_errors": rec.convert_errors,
            "stats": rec.stats,
        }
        lane = cls(meta)
        lane.spans = list(rec.spans)
        return lane


def lanes_of(payloads: Iterable[Mapping[str, Any] | Lane]) -> list[Lane]:
    """Parsed lanes, workers in number order first."""
    lanes = [p if isinstance(p, Lane) else Lane(p) for p in payloads]
    return sorted(lanes, key=lambda ln: (ln.worker_num is None, ln.worker_num or 0, ln.lane))
