"""The offline local stack: an AWS emulator (moto server) with the platform's patches, seed data, and
Airflow components started on 127.0.0.1."""
