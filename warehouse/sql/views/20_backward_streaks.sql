-- Runs of consecutive local days with backward running or walking (at least
-- mart_settings.streak_min_backward_minutes of backward moving time that day), per athlete.
WITH backward_days AS (
    SELECT
        athlete_id,
        day,
        sum(distance_m) / 1000.0 AS backward_km,
        coalesce(sum(moving_time_s), 0) AS backward_moving_time_s
    FROM mileage_by_activity
    WHERE direction = 'backward'
    GROUP BY ALL
    HAVING coalesce(sum(moving_time_s), 0) >= 60 * (SELECT streak_min_backward_minutes FROM mart_settings)
),
islands AS (
    SELECT *, day - CAST(row_number() OVER (PARTITION BY athlete_id ORDER BY day) AS INTEGER) AS island
    FROM backward_days
)
SELECT
    athlete_id,
    min(day) AS streak_start,
    max(day) AS streak_end,
    count(*) AS days,
    sum(backward_km) AS backward_km,
    sum(backward_moving_time_s) AS backward_moving_time_s
FROM islands
GROUP BY athlete_id, island
