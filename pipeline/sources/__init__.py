"""Where Lakewatch's logs come from: the synthetic event generator, the access-log file
tailer, and the one Kafka producer wrapper both of them ship through.

- ``catalog``: the simulated site's vocabulary (services, endpoints, agents, messages).
- ``events``: :class:`EventGenerator`, the pure seeded numpy event generator.
- ``batch``: :class:`EventBatch`, one slice of generated events as columns; Kafka keys/values.
- ``sampling``: the generator's daily curve, source names, Zipf/CDF draws and UUIDs.
- ``scenarios``: :class:`Scenario` plans, :class:`Label` ground truth, schedules, labels file.
- ``producer``: :class:`LogProducer`, confluent-kafka with delivery accounting and heartbeats.
- ``tailer``: :class:`FileTailer`, follows a log file through rotation with a durable position.
- ``control``: the generator's inbox for scenarios injected on command.
- ``generator_run``: the generator built from settings and produced to Kafka, paced.
- ``shipper``: :class:`Shipper`, a followed log file's lines to Kafka, at least once.
"""
