"""The Python side of the local platform around the cluster (eksflow_dev.cluster): the Airflow REST client
(``api``), the reference pipelines' runner (``demo``), waiting for runs (``runs``), process helpers
(``processes``) and the offline environment (``offline``). The AWS emulator and its seed data are
``eksflow_dev.emulator``."""
