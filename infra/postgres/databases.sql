-- One PostgreSQL server, one database per service: Prefect's (asyncpg), MLflow's backend store and its users (psycopg2).
-- Run once on an empty cluster: by the postgres image's /docker-entrypoint-initdb.d (infra/compose.yaml) and
-- by tests/test_production_stack.py on a throw-away cluster.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
