"""Performance writes, one module per concern: ``metrics`` (snapshot upsert), ``scorecards``
(configuration, recognition), ``surveys`` and ``practices``. Import from the module."""

from performance.services.metrics import MetricRowsInvalid, UpsertResult, metric_snapshots_upsert

__all__ = ["MetricRowsInvalid", "UpsertResult", "metric_snapshots_upsert"]
