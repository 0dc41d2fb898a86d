-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- One database per service, as in Kubernetes (where each also has its own role).
CREATE DATABASE memberflow_member;
CREATE DATABASE memberflow_points;
CREATE DATABASE memberflow_tier;
CREATE DATABASE memberflow_campaign;
CREATE DATABASE memberflow_analytics;
