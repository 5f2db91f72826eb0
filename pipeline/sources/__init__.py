"""Where Lakewatch's logs come from: the synthetic event generator, the access-log file
tailer, and the one Kafka producer wrapper both of them ship through.

- ``catalog``: the simulated site's vocabulary (services, endpoints, agents, messages).
- ``events``: :class:`EventGenerator`, the pure seeded numpy event generator.
- ``scenarios``: :class:`Scenario` plans, :class:`Label` ground truth, schedules, labels file.
- ``producer``: :class:`LogProducer`, confluent-kafka with delivery accounting and heartbeats.
- ``tailer``: :class:`FileTailer`, follows a log file through rotation with a durable position.
- ``control``: the generator's inbox for scenarios injected on command.
"""
