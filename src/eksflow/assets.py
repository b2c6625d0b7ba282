"""Airflow Assets that chain the reference pipelines (what the old queue tables did)."""

from __future__ import annotations

from airflow.sdk import Asset

from eksflow.settings import Settings


def curated_events(settings: Settings) -> Asset:
    """The batch pipeline's output: an S3 prefix of curated partitions; the ML pipeline is scheduled on it."""
    return Asset(uri=settings.curated_prefix_uri, name="curated_events", group="eksflow")
