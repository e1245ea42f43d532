"""Which queues, agents and Kafka partitions a worker answers for (``[kafka] route_by_queue``).

A queue belongs to the worker holding its partition of the calls topic, an agent to the
one holding its partition of the agents topic: the partition Kafka's default
partitioner (murmur2 of the key, as the producers use) gives the key. The exports read
an ``Ownership`` to show only what the worker owns; ``EVERYTHING`` is one worker's view.
"""

from __future__ import annotations

from dataclasses import dataclass


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner puts ``key`` (UTF-8) on."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Ownership:
    """``assigned`` None: everything (one worker). Otherwise the (topic, partition)s held
    now; a queue is owned when its partition of ``queue_topic`` (``queue_partitions`` of
    them) is held, an agent likewise with ``agent_topic``."""

    assigned: frozenset[tuple[str, int]] | None = None
    queue_topic: str = ""
    queue_partitions: int = 0
    agent_topic: str = ""
    agent_partitions: int = 0

    def owns_partition(self, topic: str, partition: int) -> bool:
        return self.assigned is None or (topic, partition) in self.assigned

    def owns_queue(self, queue: str) -> bool:
        return self._owns(self.queue_topic, self.queue_partitions, queue)

    def owns_agent(self, agent_id: str) -> bool:
        return self._owns(self.agent_topic, self.agent_partitions, agent_id)

    def _owns(self, topic: str, partitions: int, key: str) -> bool:
        if self.assigned is None:
            return True
        return partitions > 0 and (topic, key_partition(key, partitions)) in self.assigned


EVERYTHING = Ownership()
NOTHING = Ownership(assigned=frozenset())
