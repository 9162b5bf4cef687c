-- Files and records by import status.
SELECT status, count(*) AS files, CAST(sum(records) AS BIGINT) AS records
FROM import_ledger
GROUP BY status
