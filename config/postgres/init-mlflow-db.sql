-- MLflow's tracking store and registry live beside Airflow's metadata in the same Postgres.
CREATE DATABASE mlflow OWNER airflow;
