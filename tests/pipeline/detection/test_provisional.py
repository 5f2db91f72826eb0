"""The stream detector on open windows, over real Delta tables and the shared SparkSession:
a provisional finding is written as soon as its window has ended, then confirmed (made final,
first ``detected_at`` kept) or withdrawn (deleted) once the watermark closes the window; an
``anomalies`` table from before the ``status`` column gets it."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from pipeline.detection import anomaly_table
from pipeline.detection.anomaly_table import _frame
from pipeline.detection.engine import Detector, DetectorConfig
from pipeline.detection.features import events_to_metrics, events_to_partials
from pipeline.detection.runner import DetectorService
from pipeline.detection.simulate import SIM_START_MS, simulate_events
from pipeline.schemas import ANOMALIES_DDL, LOGS_DDL, TABLE_ANOMALIES, column_names
from pipeline.settings import Settings
from pipeline.sources.scenarios import Scenario
from pipeline.status import read_status
from tests.pipeline.detection.test_delta_io import _logs_frame, write_partials

START = pd.Timestamp(SIM_START_MS, unit="ms")
BURST_AT_S = 12 * 60
LOG_COLS = ["ts", "message", "level", "status"]
KEY = ["window_start", "entity_type", "entity", "kind", "status"]


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    events, _labels = simulate_events(seed=3, sim_seconds=14 * 60, rate=40,
                                      scenarios=[Scenario("error_burst", BURST_AT_S, 60)])
    return events


def _seg(events: pd.DataFrame, a_s: int, b_s: int) -> pd.DataFrame:
    ts = events["ts"].astype("int64")
    return events[(ts >= SIM_START_MS + a_s * 1000) & (ts < SIM_START_MS + b_s * 1000)]


class _Stream:
    """Appends what the processor would: one micro-batch of partials (and its logs rows),
    with the stored watermark at ``watermark_s`` into the simulated span."""

    def __init__(self, spark, settings: Settings) -> None:
        self.spark, self.settings, self.batch = spark, settings, 0

    def append(self, events: pd.DataFrame, watermark_s: int) -> None:
        from deltalake import write_deltalake

        from pipeline.detection.delta_io import to_arrow

        partials = events_to_partials(events).assign(
            watermark=START + pd.Timedelta(seconds=watermark_s), batch_id=self.batch)
        self.batch += 1
        write_partials(self.spark, self.settings, partials)
        write_deltalake(str(self.settings.table_path("logs")),
                        to_arrow(_logs_frame(events), LOGS_DDL), mode="append")


def _rows(frame: pd.DataFrame) -> set[tuple]:
    return {(pd.Timestamp(r.window_start), r.entity_type, r.entity, r.kind, r.status)
            for r in frame.itertuples()}


@pytest.mark.slow  # eight Delta appends, four polls with their MERGEs: ~2-4 min here
def test_provisional_findings_are_confirmed_or_withdrawn(spark, settings: Settings, sim):
    events = sim
    busiest = str(events["source"].value_counts().index[0])
    # the reference: the same detector on the pandas mirror of the same windows
    ref = Detector(DetectorConfig())
    ref.process(events_to_metrics(_seg(events, 0, 600)), _seg(events, 0, 600)[LOG_COLS])
    w600 = _seg(events, 600, 610)
    held = w600[w600["source"] == busiest]  # that source's shipper lags by a window
    drop = ref.peek(events_to_metrics(w600.drop(held.index)))
    assert (pd.Timestamp(START + pd.Timedelta(seconds=600)), "source", busiest,
            "traffic_drop", "provisional") in _rows(drop)
    assert ref.process(events_to_metrics(_seg(events, 600, 720)),
                       _seg(events, 600, 720)[LOG_COLS]).empty  # the drop was not real
    burst = ref.peek(events_to_metrics(_seg(events, 720, 770)))
    final = ref.process(events_to_metrics(_seg(events, 720, 790)),
                        _seg(events, 720, 790)[LOG_COLS])
    assert len(burst) and set(burst["kind"]) == {"error_burst"}
    assert set(burst["anomaly_id"]) < set(final["anomaly_id"])

    stream = _Stream(spark, settings)
    service = DetectorService(spark, settings, threading.Event())
    stream.append(_seg(events, 0, 590), watermark_s=590)  # windows to 22:23:00 final
    service.warm_up()
    assert anomaly_table.read(spark, settings).empty

    # 22:23:20 has ended (a later window has partials), the watermark has not passed it
    stream.append(_seg(events, 590, 620).drop(held.index), watermark_s=600)
    assert service.poll_once() == len(drop)
    stored = anomaly_table.read(spark, settings)
    assert _rows(stored) == _rows(drop)
    assert set(stored["anomaly_id"]) == set(drop["anomaly_id"])

    # the lagging source's events arrive; the watermark closes 22:23:20 and passes to the
    # burst, whose windows are open (22:25:20 to 22:26:00 ended, 22:26:10 still filling)
    stream.append(pd.concat([held, _seg(events, 620, 780)]), watermark_s=720)
    assert service.poll_once() == len(burst)
    assert (service.provisional, service.confirmed, service.withdrawn) == (
        len(drop) + len(burst), 0, len(drop))
    stored = anomaly_table.read(spark, settings)
    assert _rows(stored) == _rows(burst)
    first_seen = stored.set_index("anomaly_id")["detected_at"]

    # the burst's windows close: every provisional finding confirmed, the last window's new
    stream.append(_seg(events, 780, 800), watermark_s=790)
    assert service.poll_once() == len(final) - len(burst)
    assert (service.confirmed, service.withdrawn) == (len(burst), len(drop))
    stored = anomaly_table.read(spark, settings)
    assert _rows(stored) == _rows(final)
    assert set(stored["status"]) == {"final"}
    confirmed = stored.set_index("anomaly_id").loc[first_seen.index]
    assert (confirmed["detected_at"] == first_seen).all()  # when the alert was first raised
    by_id = final.set_index("anomaly_id")
    assert (confirmed["score"] == by_id.loc[first_seen.index, "score"]).all()

    # settling the same windows again changes nothing
    got = anomaly_table.settle(spark, settings, final, START + pd.Timedelta(seconds=720),
                               START + pd.Timedelta(seconds=780))
    assert got == {"inserted": 0, "confirmed": 0, "withdrawn": 0}
    service.heartbeat("running")
    status = read_status(settings, "detector")
    assert (status.provisional_raised, status.provisional_withdrawn) == (
        len(drop) + len(burst), len(drop))


def test_table_without_status_gets_the_column(spark, settings: Settings, sim):
    """A table written before ``status`` existed: the column is added, old rows are final."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    path = settings.table_path(TABLE_ANOMALIES)
    DeltaTable.createIfNotExists(spark).location(str(path)).addColumns(
        StructType.fromDDL(ANOMALIES_DDL)).execute()
    found = Detector(DetectorConfig()).process(events_to_metrics(sim), sim[LOG_COLS])
    old, new = found.iloc[:2], found.iloc[2:4]
    (_frame(spark, old, settings.data_dir / "tmp" / "old.parquet").drop("status")
     .write.format("delta").mode("append").save(str(path)))

    assert anomaly_table.insert_new(spark, settings, new.assign(status="provisional")) == 2
    stored = anomaly_table.read(spark, settings).set_index("anomaly_id")
    assert list(stored.reset_index().columns) == column_names(anomaly_table.TABLE_DDL)
    assert stored.loc[list(old["anomaly_id"]), "status"].tolist() == ["final", "final"]
    assert stored.loc[list(new["anomaly_id"]), "status"].tolist() == ["provisional"] * 2
    assert len(stored) == 4
