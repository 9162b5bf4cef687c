-- Weekly distance per athlete and sport, by ISO week of each activity's local start date.
-- direction and gait are 'unknown' until backward detection has scored the activity.
SELECT
    athlete_id,
    CAST(date_trunc('week', local_day) AS DATE) AS week_start,
    sport,
    'unknown' AS direction,
    'unknown' AS gait,
    round(sum(distance_m) / 1000.0, 3) AS distance_km,
    sum(moving_time_s) AS moving_time_s,
    count(*) AS sessions,
    sum(elevation_gain_m) AS elevation_gain_m,
    CAST(NULL AS DOUBLE) AS kcal_net,
    CAST(NULL AS DOUBLE) AS kcal_gross
FROM activities
WHERE duplicate_of IS NULL
GROUP BY ALL
