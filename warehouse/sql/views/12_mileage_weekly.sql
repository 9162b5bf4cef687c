-- As mileage_daily, per ISO week (Monday to Sunday) of each activity's local start date.
-- The measures are mileage_daily's, summed: an activity belongs to one day, so its sessions add up.
SELECT * REPLACE (CAST(sessions AS BIGINT) AS sessions)
FROM (
    SELECT
        athlete_id,
        CAST(date_trunc('week', day) AS DATE) AS week_start,
        CAST(isoyear(date_trunc('week', day)) AS INTEGER) AS iso_year,
        CAST(weekofyear(date_trunc('week', day)) AS INTEGER) AS iso_week,
        sport,
        direction,
        gait,
        sum(COLUMNS(* EXCLUDE (athlete_id, day, sport, direction, gait)))
    FROM mileage_daily
    GROUP BY ALL
)
