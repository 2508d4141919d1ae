-- Dagster's run, event and schedule storage lives beside the warehouse, in its own database.
create database dagster owner pulse;
