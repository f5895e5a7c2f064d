"""CloudWatch GetMetricData as CloudWatch answers it, over moto's metric store.

Owns: which stored datapoints a `MetricStat` query sees, and where its
periods start. CloudWatch identifies a metric by namespace, name and the
exact set of its dimensions: a query without dimensions (the account-level
`AWS/SES` `Reputation.BounceRate`) sees only data put without dimensions,
one with `ses:configuration-set=a` only data put with exactly that
dimension, in any order. moto 5.2.5 instead lets a query without
dimensions see every datapoint of that name, drops the namespace check when
the query has dimensions, and compares dimension lists sorted by a broken
`Dimension.__lt__` (so two dimensions can fail to match themselves).

Periods start at the query's StartTime rounded down as CloudWatch documents
it: to the whole minute when StartTime is less than 15 days ago, to the
5-minute clock interval from 15 to 63 days, to the hour beyond; with a
Period of 5, 10, 20 or 30 s (high resolution) to that division of the
minute. Datapoints are stamped StartTime' + k * Period. moto keeps periods
at the unrounded StartTime (to the second), so a point between the rounded
and the given StartTime was lost and timestamps were off the minute.

`install()` replaces `CloudWatchBackend.get_metric_data`, so the JSON and
query protocols and the CBOR adapter (cbor.py) all get it. Metric math runs
on moto's expression parser over these results; Metrics Insights (SELECT)
queries go to moto's own implementation unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import CloudWatchBackend, MetricDatumBase, Statistics

HIGH_RESOLUTION_PERIODS = {5, 10, 20, 30}
# (namespace, metric name, dimension set): what identifies a metric.
MetricKey = tuple[str, str, frozenset[tuple[Any, Any]]]

_moto_get_metric_data = CloudWatchBackend.get_metric_data


def _utc(t: datetime) -> datetime:
    # moto stores a datum put without Timestamp as naive UTC.
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def rounded_start(start: datetime, period: int, now: datetime) -> datetime:
    """StartTime as CloudWatch rounds it (GetMetricData's StartTime docs)."""
    start = _utc(start).replace(microsecond=0)
    if period in HIGH_RESOLUTION_PERIODS:
        step = period
    elif period < 60:
        step = 1
    else:
        age = _utc(now) - start
        step = 60 if age < timedelta(days=15) else 300 if age <= timedelta(days=63) else 3600
    return start - timedelta(seconds=(start.minute * 60 + start.second) % step)


def _dimension_set(dimensions: list[Any]) -> frozenset[tuple[Any, Any]]:
    out = set()
    for d in dimensions or []:
        if isinstance(d, dict):
            out.add((d.get("Name"), d.get("Value")))
        else:  # moto's Dimension
            out.add((d.name, d.value))
    return frozenset(out)


def _period(query: dict[str, Any]) -> int:
    """The query's Period, one CloudWatch allows: 1, 5, 10, 20, 30 (high
    resolution), 60 or a multiple of 60."""
    raw = query["MetricStat"].get("Period")
    period = int(raw) if isinstance(raw, (int, str)) and str(raw).isdigit() else 0
    if not (period in {1, *HIGH_RESOLUTION_PERIODS} or period > 0 and period % 60 == 0):
        raise ValidationError(
            f"The parameter MetricStat.Period must be 1, 5, 10, 20, 30 or a multiple of 60, not {raw!r}."
        )
    return period


def _metric_stat(
    query: dict[str, Any], index: dict[MetricKey, list[MetricDatumBase]], start: datetime, end: datetime,
    scan_by: str,
) -> dict[str, Any]:
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]
    name = metric["MetricName"]
    key = (metric["Namespace"], name, _dimension_set(metric.get("Dimensions")))
    unit, stat = stat_spec.get("Unit"), stat_spec["Stat"]
    period = _period(query)
    delta = timedelta(seconds=period)
    first = rounded_start(start, period, datetime.now(timezone.utc))
    # Period k holds [first + k * Period, first + (k + 1) * Period).
    periods: dict[int, list[MetricDatumBase]] = defaultdict(list)
    for md in index.get(key, []):
        at = _utc(md.timestamp)
        if first <= at < end and (not unit or md.unit == unit):
            periods[(at - first) // delta].append(md)
    values: list[Any] = []
    timestamps: list[datetime] = []
    for k in sorted(periods):
        stamp = first + k * delta
        stats = Statistics([stat], stamp)
        stats.metric_data = periods[k]
        values.append(stats.get_statistics_for_type(stat))
        timestamps.append(stamp)
    if scan_by == "TimestampDescending":
        timestamps.reverse()
        values.reverse()
    return {
        "id": query["Id"],
        "label": query.get("Label") or f"{name} {stat}",
        "values": values,
        "timestamps": timestamps,
        "status_code": "Complete",
    }


def get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    start = _utc(start_time).replace(microsecond=0)
    end = _utc(end_time).replace(microsecond=0)
    # moto's (and CloudWatch's) checks, on the times as given.
    if start > end:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    if start == end:
        raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
    stat_queries = [q for q in queries if "MetricStat" in q]
    for query in stat_queries:
        _period(query)  # refuse the whole call before computing any of it
    index: dict[MetricKey, list[MetricDatumBase]] = defaultdict(list)
    for md in self.get_all_metrics():
        index[(md.namespace, md.name, _dimension_set(md.dimensions))].append(md)
    results = [_metric_stat(q, index, start, end, scan_by) for q in stat_queries]
    returned = [r for q, r in zip(stat_queries, results) if q.get("ReturnData", True)]
    for query in queries:
        if "Expression" in query and not query["Expression"].startswith("SELECT"):
            values, timestamps = parse_expression(query["Expression"], results)
            returned.append({
                "id": query["Id"],
                "label": query.get("Label") or query["Id"],
                "values": values,
                "timestamps": timestamps,
                "status_code": "Complete",
            })
    insights = [q for q in queries if "Expression" in q and q["Expression"].startswith("SELECT")]
    if insights:
        first = rounded_start(start, int(insights[0].get("Period") or 60), datetime.now(timezone.utc))
        if start_time.tzinfo is None:  # moto compares with its own naive or aware datetimes
            first = first.replace(tzinfo=None)
        returned.extend(_moto_get_metric_data(self, insights, first, end_time, scan_by))
    return returned


def install() -> None:
    CloudWatchBackend.get_metric_data = get_metric_data
