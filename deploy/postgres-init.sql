-- The warehouse's DuckLake catalog gets a database of its own beside Dagster's.
CREATE DATABASE warehouse OWNER retrostride;
