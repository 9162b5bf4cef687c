-- Every calendar day of each athlete and sport (from the sport's first day to the athlete's last
-- day), with that day's totals and the rolling 7-day and 28-day totals ending on it.
WITH daily AS (
    SELECT
        athlete_id,
        day,
        sport,
        sum(distance_m) / 1000.0 AS distance_km,
        coalesce(sum(distance_m) FILTER (WHERE direction = 'backward'), 0) / 1000.0 AS backward_km,
        coalesce(sum(moving_time_s), 0) AS moving_time_s,
        coalesce(sum(moving_time_s) FILTER (WHERE direction = 'backward'), 0) AS backward_moving_time_s,
        count(DISTINCT activity_id) AS sessions,
        coalesce(sum(kcal_net), 0) AS kcal_net
    FROM mileage_by_activity
    GROUP BY ALL
),
spans AS (
    SELECT athlete_id, sport, min(day) AS first_day, max(max(day)) OVER (PARTITION BY athlete_id) AS last_day
    FROM daily
    GROUP BY athlete_id, sport
),
calendar AS (
    SELECT athlete_id, sport, CAST(unnest(generate_series(first_day, last_day, INTERVAL 1 DAY)) AS DATE) AS day
    FROM spans
),
days AS (
    SELECT
        c.athlete_id,
        c.day,
        c.sport,
        coalesce(d.distance_km, 0) AS distance_km,
        coalesce(d.backward_km, 0) AS backward_km,
        coalesce(d.moving_time_s, 0) AS moving_time_s,
        coalesce(d.backward_moving_time_s, 0) AS backward_moving_time_s,
        coalesce(d.sessions, 0) AS sessions,
        coalesce(d.kcal_net, 0) AS kcal_net
    FROM calendar AS c
    LEFT JOIN daily AS d USING (athlete_id, sport, day)
)
SELECT
    *,
    sum(distance_km) OVER last_7 AS distance_km_7d,
    sum(backward_km) OVER last_7 AS backward_km_7d,
    sum(moving_time_s) OVER last_7 AS moving_time_s_7d,
    sum(backward_moving_time_s) OVER last_7 AS backward_moving_time_s_7d,
    CAST(sum(sessions) OVER last_7 AS BIGINT) AS sessions_7d,
    sum(kcal_net) OVER last_7 AS kcal_net_7d,
    sum(distance_km) OVER last_28 AS distance_km_28d,
    sum(backward_km) OVER last_28 AS backward_km_28d,
    sum(moving_time_s) OVER last_28 AS moving_time_s_28d,
    sum(backward_moving_time_s) OVER last_28 AS backward_moving_time_s_28d,
    CAST(sum(sessions) OVER last_28 AS BIGINT) AS sessions_28d,
    sum(kcal_net) OVER last_28 AS kcal_net_28d
FROM days
WINDOW
    last_7 AS (PARTITION BY athlete_id, sport ORDER BY day RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW),
    last_28 AS (PARTITION BY athlete_id, sport ORDER BY day RANGE BETWEEN INTERVAL 27 DAYS PRECEDING AND CURRENT ROW)
