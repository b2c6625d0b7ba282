"""Event-driven Assets: triggers the triggerer runs as AssetWatchers, each event an Asset event.

- ``release_watcher``: the environment's job-release queue (SQS) → one Asset event per release of the watched job
  (``eksflow.assets.job_release`` attaches it).
- ``queue_table`` (configuration, SQL), ``queue_table_trigger`` (the trigger), ``queue_table_tasks`` (the DAG's
  claim and write-back tasks): the legacy queue tables bridged to Assets (docs/migrating-queue-tables.md).

Both run on Airflow 3.3's shared streams in ack mode (airflow/triggers/shared_stream.py): the source is advanced —
the message deleted, the row marked emitted — only after Airflow confirmed the Asset event persisted.
"""
