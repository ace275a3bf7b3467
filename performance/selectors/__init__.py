"""Performance reads with tenancy applied, one module per concern. Import from the module."""

from performance.selectors.metrics import metric_snapshots_for_user

__all__ = ["metric_snapshots_for_user"]
