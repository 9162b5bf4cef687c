-- Each athlete's longest backward streak (the latest of equally long ones); 0 days and null dates
-- for an athlete who never ran backward.
WITH ranked AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY athlete_id ORDER BY days DESC, streak_end DESC) AS rank,
        count(*) OVER (PARTITION BY athlete_id) AS streaks,
        sum(days) OVER (PARTITION BY athlete_id) AS backward_days
    FROM backward_streaks
),
athletes AS (SELECT DISTINCT athlete_id FROM activities)
SELECT
    a.athlete_id,
    coalesce(r.days, 0) AS days,
    r.streak_start,
    r.streak_end,
    coalesce(r.backward_km, 0) AS backward_km,
    coalesce(r.streaks, 0) AS streaks,
    CAST(coalesce(r.backward_days, 0) AS BIGINT) AS backward_days
FROM athletes AS a
LEFT JOIN ranked AS r ON r.athlete_id = a.athlete_id AND r.rank = 1
