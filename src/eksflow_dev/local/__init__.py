"""The offline local stack's Python side: the Airflow REST client (``api``), the reference pipelines' runner
(``demo``), process helpers (``processes``) and the older all-processes stack (``stack``). The AWS emulator and
its seed data are ``eksflow_dev.emulator``."""
