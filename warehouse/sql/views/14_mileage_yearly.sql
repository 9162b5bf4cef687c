-- As mileage_daily, per calendar year of each activity's local start date.
SELECT
    athlete_id,
    CAST(year(day) AS INTEGER) AS year,
    sport,
    direction,
    gait,
    sum(distance_m) / 1000.0 AS distance_km,
    sum(moving_time_s) AS moving_time_s,
    count(DISTINCT activity_id) AS sessions,
    sum(elevation_gain_m) AS elevation_gain_m,
    sum(kcal_net) AS kcal_net,
    sum(kcal_gross) AS kcal_gross
FROM mileage_by_activity
GROUP BY ALL
