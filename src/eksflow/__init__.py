"""eksflow: Kubernetes-native Apache Airflow 3 on AWS."""

__version__ = "0.1.0"
