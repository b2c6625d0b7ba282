"""The Python side of running the platform locally: the Airflow REST client (``api``), the reference pipelines'
runner (``demo``), run waiters (``runs``), the offline environment (``offline``), process helpers
(``processes``) and the older all-processes stack (``stack``, make bench only). The AWS emulator and its seed
data are ``eksflow_dev.emulator``; the local cluster is ``eksflow_dev.cluster``."""
