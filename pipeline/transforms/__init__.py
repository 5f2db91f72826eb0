"""Pure Spark transformations of the streaming processor: DataFrame in, DataFrame out.

Nothing here reads a stream, writes a table or touches a checkpoint (that is the job of
:mod:`pipeline.runners`), so every function works the same on a small batch frame in a unit
test and on the live Kafka stream.

- :mod:`.columns`: the table schemas of :mod:`pipeline.schemas` as Spark types.
- :mod:`.parsing`: Kafka records -> typed log rows or quarantine rows with a reason.
- :mod:`.metrics`: tumbling-window request/error/latency metrics.
- :mod:`.analytics`: batch reports over the ``logs`` table.
"""
