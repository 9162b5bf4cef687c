-- Files and records by import status.
SELECT status, count(*) AS files, sum(records) AS records
FROM import_ledger
GROUP BY status
