"""The sweeper's CloudWatch metrics, written as embedded metric format (EMF) log lines by Powertools.

No API call: Lambda ships the log line and CloudWatch extracts the metrics. template.yaml alarms on
:data:`STUCK_ORDERS` (orders found PENDING past the purchase timeout: the saga stalled somewhere).
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "CENTLI"
SWEEPER_SERVICE: Final = "centli-sweeper"  # the ``service`` dimension Powertools adds
STUCK_ORDERS: Final = "OrdersStuckPending"
REPUBLISHED: Final = "OutboxEventsRepublished"


def emit_sweep_metrics(*, stuck: int, republished: int) -> None:
    """One EMF line with both counts of a sweep (zeros included, so the alarm sees every run)."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=NAMESPACE, service=SWEEPER_SERVICE)
    metrics.add_metric(name=STUCK_ORDERS, unit=MetricUnit.Count, value=stuck)
    metrics.add_metric(name=REPUBLISHED, unit=MetricUnit.Count, value=republished)
    metrics.flush_metrics()
