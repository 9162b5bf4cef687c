-- Distance, time, sessions, climb and kcal per athlete, local day, sport, direction and gait.
-- `sessions` counts activities with any of this direction and gait: an activity with forward and
-- backward stretches counts once in each row, so add sessions across directions with care.
SELECT
    athlete_id,
    day,
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
