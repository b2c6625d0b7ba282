"""Airflow Assets that chain the reference pipelines (what the old queue tables did)."""

from __future__ import annotations

from airflow.sdk import Asset

from eksflow.settings import Settings


def curated_events(settings: Settings) -> Asset:
    """The batch pipeline's output: an S3 prefix of curated partitions; the ML pipeline is scheduled on it."""
    return Asset(uri=settings.curated_prefix_uri, name="curated_events", group="eksflow")


def job_release(settings: Settings, job: str) -> Asset:
    """The Asset a release of ``job`` updates (eksflow.jobs). Its watcher reads the environment's release queue in
    the triggerer; each event's payload is the release (eksflow.releases: ``release_from_payload`` reads it back)
    with its digest, ECS family and revision (eksflow.events.release_watcher)."""
    from airflow.sdk import AssetWatcher

    from eksflow.events.release_watcher import ReleaseWatcher
    from eksflow.jobs import get_job

    spec = get_job(job)
    return Asset(
        uri=spec.release_asset_uri(settings.env),
        name=spec.release_asset_name,
        group="eksflow-releases",
        watchers=[
            AssetWatcher(name=f"{spec.release_asset_name}__queue", trigger=ReleaseWatcher.for_job(settings, job))
        ],
    )
