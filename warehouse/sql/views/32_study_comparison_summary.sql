-- study_comparison summed up: one row per measure, athletes as the unit (each athlete's windows
-- are averaged first, since overlapping windows of one athlete are not independent), beside the
-- study's training group.
WITH measures AS (
    SELECT athlete_id, window_start, measure, value
    FROM study_comparison
    UNPIVOT INCLUDE NULLS (value FOR measure IN (body_fat_change_pct, body_fat_change_points, weight_change_pct))
),
per_athlete AS (
    SELECT measure, athlete_id, count(*) AS windows, avg(value) AS value
    FROM measures
    GROUP BY ALL
),
per_measure AS (
    SELECT
        measure,
        CAST(sum(windows) AS BIGINT) AS windows,
        count(*) AS athletes,
        count(value) AS athletes_measured,
        avg(value) AS mean_change,
        stddev_samp(value) AS sd_change,
        min(value) AS min_change,
        max(value) AS max_change
    FROM per_athlete
    GROUP BY measure
)
SELECT
    m.measure,
    coalesce(p.windows, 0) AS windows,
    coalesce(p.athletes, 0) AS athletes,
    coalesce(p.athletes_measured, 0) AS athletes_measured,
    p.mean_change,
    p.sd_change,
    p.min_change,
    p.max_change,
    CASE WHEN m.measure LIKE 'body_fat%' THEN s.study_body_fat_change_pct END AS study_change,
    s.study_participants
FROM (VALUES ('body_fat_change_pct'), ('body_fat_change_points'), ('weight_change_pct')) AS m(measure)
CROSS JOIN mart_settings AS s
LEFT JOIN per_measure AS p USING (measure)
