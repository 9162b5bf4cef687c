-- As mileage_daily, per calendar year of each activity's local start date.
-- The measures are mileage_daily's, summed: an activity belongs to one day, so its sessions add up.
SELECT * REPLACE (CAST(sessions AS BIGINT) AS sessions)
FROM (
    SELECT
        athlete_id,
        CAST(year(day) AS INTEGER) AS year,
        sport,
        direction,
        gait,
        sum(COLUMNS(* EXCLUDE (athlete_id, day, sport, direction, gait)))
    FROM mileage_daily
    GROUP BY ALL
)
