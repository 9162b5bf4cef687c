-- One row per activity, direction and gait: the grain every mileage mart sums.
-- An activity with segments is split by its segments' direction and gait (their distance, moving
-- time, climb and kcal); one without segments (not scored yet) is a single 'unknown' row with the
-- activity's own totals and null kcal.  `day` is the activity's local start date.  An activity that
-- repeats another (the same run from a second source: `duplicate_of` set) is left out.
WITH segmented AS (
    SELECT
        activity_id,
        coalesce(direction, 'unknown') AS direction,
        coalesce(gait, 'unknown') AS gait,
        sum(distance_m) AS distance_m,
        sum(moving_time_s) AS moving_time_s,
        sum(elevation_gain_m) AS elevation_gain_m,
        sum(kcal_net) AS kcal_net,
        sum(kcal_gross) AS kcal_gross
    FROM segments
    GROUP BY ALL
)
SELECT
    a.athlete_id,
    a.activity_id,
    a.local_day AS day,
    coalesce(a.sport, 'unknown') AS sport,
    coalesce(s.direction, 'unknown') AS direction,
    coalesce(s.gait, 'unknown') AS gait,
    CASE WHEN s.activity_id IS NULL THEN a.distance_m ELSE s.distance_m END AS distance_m,
    CASE WHEN s.activity_id IS NULL THEN a.moving_time_s ELSE s.moving_time_s END AS moving_time_s,
    CASE WHEN s.activity_id IS NULL THEN a.elevation_gain_m ELSE s.elevation_gain_m END AS elevation_gain_m,
    s.kcal_net,
    s.kcal_gross
FROM activities AS a
LEFT JOIN segmented AS s USING (activity_id)
WHERE a.local_day IS NOT NULL AND a.duplicate_of IS NULL
