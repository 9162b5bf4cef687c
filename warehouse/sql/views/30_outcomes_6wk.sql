-- Per athlete and outcome window (length, step and tolerance from mart_settings): backward
-- training, kcal, weight and body fat at the window's edges, the observed change, and the change
-- the energy estimate predicts (static 7700 kcal/kg: an upper bound; and a dynamic estimate).
-- Windows start on the Monday of an athlete's first activity or weighing and step on until the
-- last; a window that ends after the athlete's last data is kept but not `complete`.
-- Weighings are matched in UTC: the one nearest to 00:00 of window_start (start) and to 24:00 of
-- window_end (end), within the tolerance; otherwise the value is null and *_reason says why.
WITH settings AS (
    SELECT * FROM mart_settings
),
measurements AS (
    SELECT athlete_id, timezone('UTC', ts) AS measured_at, weight_kg, body_fat_pct
    FROM body_measurements
    WHERE ts IS NOT NULL
),
spans AS (  -- each athlete's data: first and last day, the Monday windows start from, the last window
    SELECT
        athlete_id,
        first_day,
        last_day,
        CAST(date_trunc('week', first_day) AS DATE) AS anchor,
        CAST(floor((last_day - CAST(date_trunc('week', first_day) AS DATE)) / outcome_step_days) AS BIGINT) AS last_k
    FROM (
        SELECT athlete_id, min(day) AS first_day, max(day) AS last_day
        FROM (
            SELECT athlete_id, local_day AS day FROM activities WHERE local_day IS NOT NULL AND duplicate_of IS NULL
            UNION ALL
            SELECT athlete_id, CAST(measured_at AS DATE) FROM measurements
        )
        GROUP BY athlete_id
    ), settings
),
windows AS (  -- window k starts k steps after the anchor
    SELECT
        athlete_id,
        k,
        last_day,
        anchor + CAST(k * outcome_step_days AS INTEGER) AS window_start,
        anchor + CAST(k * outcome_step_days + outcome_window_days - 1 AS INTEGER) AS window_end
    FROM (SELECT *, unnest(range(0, last_k + 1)) AS k FROM spans), settings
),
sessions AS (  -- one row per activity
    SELECT
        m.athlete_id,
        m.activity_id,
        m.day,
        bool_or(m.direction = 'backward') AS has_backward,
        coalesce(sum(m.moving_time_s) FILTER (WHERE m.direction = 'backward'), 0) / 60.0 AS backward_minutes,
        coalesce(sum(m.distance_m) FILTER (WHERE m.direction = 'backward'), 0) / 1000.0 AS backward_km,
        coalesce(sum(m.kcal_net) FILTER (WHERE m.direction = 'backward'), 0) AS kcal_backward,
        coalesce(sum(m.kcal_net), 0) AS kcal_total,
        any_value(e.mass_kg) AS mass_kg
    FROM mileage_by_activity AS m
    LEFT JOIN activity_energy AS e USING (activity_id)
    GROUP BY m.athlete_id, m.activity_id, m.day
),
in_window AS (  -- each activity in each window it falls in (an equi-join on k: no range join)
    SELECT w.window_start, s.*, (s.day - w.window_start) // 7 AS week
    FROM (
        SELECT
            sessions.*,
            unnest(range(
                CAST(greatest(0, ceil((day - anchor - outcome_window_days + 1) / outcome_step_days)) AS BIGINT),
                CAST(floor((day - anchor) / outcome_step_days) AS BIGINT) + 1)) AS k
        FROM sessions
        JOIN spans USING (athlete_id), settings
    ) AS s
    JOIN windows AS w USING (athlete_id, k)
),
training AS (
    SELECT
        athlete_id,
        window_start,
        count(*) AS sessions,
        count(*) FILTER (WHERE has_backward) AS backward_sessions,
        sum(backward_minutes) AS backward_minutes,
        sum(backward_km) AS backward_km,
        sum(kcal_backward) AS kcal_backward,
        sum(kcal_total) AS kcal_total,
        avg(mass_kg) AS mean_activity_mass_kg
    FROM in_window
    GROUP BY ALL
),
protocol_weeks AS (  -- weeks of the window with enough sessions of the study's length
    SELECT athlete_id, window_start, count(*) AS weeks
    FROM (
        SELECT athlete_id, window_start, week
        FROM in_window, settings
        WHERE backward_minutes BETWEEN study_session_min_minutes AND study_session_max_minutes
        GROUP BY ALL
        HAVING count(*) >= any_value(study_sessions_per_week)
    )
    GROUP BY ALL
),
candidates AS (  -- each weighing and each window edge it is within the tolerance of (again by k)
    SELECT
        m.athlete_id,
        m.measure,
        m.value,
        m.measured_at,
        e.edge,
        unnest(range(
            CAST(greatest(0, ceil((m.offset_days - measurement_tolerance_days - e.shift) / outcome_step_days)) AS BIGINT),
            CAST(least(m.last_k, floor((m.offset_days + measurement_tolerance_days - e.shift) / outcome_step_days)) AS BIGINT) + 1
        )) AS k
    FROM (
        SELECT u.*, s.last_k, (epoch(u.measured_at) - epoch(CAST(s.anchor AS TIMESTAMP))) / 86400 AS offset_days
        FROM (UNPIVOT measurements ON weight_kg, body_fat_pct INTO NAME measure VALUE value) AS u
        JOIN spans AS s USING (athlete_id)
    ) AS m
    CROSS JOIN settings
    CROSS JOIN (
        SELECT 'start' AS edge, 0 AS shift
        UNION ALL
        SELECT 'end', outcome_window_days FROM mart_settings  -- the end edge is 24:00 of window_end
    ) AS e
),
nearest AS (  -- the weighing nearest to each edge, per measure
    SELECT c.athlete_id, w.window_start, c.edge, c.measure, c.value, c.measured_at
    FROM candidates AS c
    JOIN windows AS w USING (athlete_id, k)
    CROSS JOIN settings
    WHERE abs(epoch(c.measured_at) - epoch(CAST(CASE WHEN c.edge = 'start' THEN w.window_start ELSE w.window_end + 1 END AS TIMESTAMP)))
          <= measurement_tolerance_days * 86400
    QUALIFY row_number() OVER (
        PARTITION BY c.athlete_id, w.window_start, c.edge, c.measure
        ORDER BY abs(epoch(c.measured_at) - epoch(CAST(CASE WHEN c.edge = 'start' THEN w.window_start ELSE w.window_end + 1 END AS TIMESTAMP))),
                 CASE WHEN c.edge = 'start' THEN epoch(c.measured_at) ELSE -epoch(c.measured_at) END
    ) = 1
),
edge_values AS (
    SELECT
        athlete_id,
        window_start,
        any_value(value) FILTER (WHERE edge = 'start' AND measure = 'weight_kg') AS weight_start_kg,
        any_value(measured_at) FILTER (WHERE edge = 'start' AND measure = 'weight_kg') AS weight_start_at,
        any_value(value) FILTER (WHERE edge = 'end' AND measure = 'weight_kg') AS weight_end_kg,
        any_value(measured_at) FILTER (WHERE edge = 'end' AND measure = 'weight_kg') AS weight_end_at,
        any_value(value) FILTER (WHERE edge = 'start' AND measure = 'body_fat_pct') AS body_fat_start_pct,
        any_value(measured_at) FILTER (WHERE edge = 'start' AND measure = 'body_fat_pct') AS body_fat_start_at,
        any_value(value) FILTER (WHERE edge = 'end' AND measure = 'body_fat_pct') AS body_fat_end_pct,
        any_value(measured_at) FILTER (WHERE edge = 'end' AND measure = 'body_fat_pct') AS body_fat_end_at
    FROM nearest
    GROUP BY ALL
),
kinds AS (  -- which measures an athlete has at all
    SELECT athlete_id, count(weight_kg) > 0 AS has_weight, count(body_fat_pct) > 0 AS has_body_fat
    FROM measurements
    GROUP BY athlete_id
),
joined AS (
    SELECT
        w.athlete_id,
        w.window_start,
        w.window_end,
        w.window_end <= w.last_day AS complete,
        CAST(least(w.window_end, w.last_day) - w.window_start + 1 AS INTEGER) AS days_observed,
        coalesce(t.sessions, 0) AS sessions,
        coalesce(t.backward_sessions, 0) AS backward_sessions,
        coalesce(t.backward_minutes, 0) AS backward_minutes,
        coalesce(t.backward_km, 0) AS backward_km,
        coalesce(t.kcal_backward, 0) AS kcal_backward,
        coalesce(t.kcal_total, 0) AS kcal_total,
        v.weight_start_kg,
        v.weight_start_at,
        CASE WHEN w.window_end <= w.last_day THEN v.weight_end_kg END AS weight_end_kg,
        CASE WHEN w.window_end <= w.last_day THEN v.weight_end_at END AS weight_end_at,
        v.body_fat_start_pct,
        v.body_fat_start_at,
        CASE WHEN w.window_end <= w.last_day THEN v.body_fat_end_pct END AS body_fat_end_pct,
        CASE WHEN w.window_end <= w.last_day THEN v.body_fat_end_at END AS body_fat_end_at,
        coalesce(v.weight_start_kg, t.mean_activity_mass_kg) AS prediction_mass_kg,
        coalesce(p.weeks, 0) AS protocol_weeks_met,
        coalesce(k.has_weight, false) AS has_weight,
        coalesce(k.has_body_fat, false) AS has_body_fat,
        w.last_day,
        s.*
    FROM windows AS w
    CROSS JOIN settings AS s
    LEFT JOIN training AS t USING (athlete_id, window_start)
    LEFT JOIN edge_values AS v USING (athlete_id, window_start)
    LEFT JOIN protocol_weeks AS p USING (athlete_id, window_start)
    LEFT JOIN kinds AS k USING (athlete_id)
)
SELECT
    athlete_id,
    window_start,
    window_end,
    backward_minutes,
    backward_sessions,
    backward_km,
    kcal_backward,
    kcal_total,
    weight_start_kg,
    weight_end_kg,
    100.0 * (weight_end_kg - weight_start_kg) / weight_start_kg AS weight_change_pct,
    body_fat_start_pct,
    body_fat_end_pct,
    100.0 * (body_fat_end_pct - body_fat_start_pct) / body_fat_start_pct AS body_fat_change_pct,
    -100.0 * kcal_total / kcal_per_kg / prediction_mass_kg AS predicted_weight_change_pct,
    true AS predicted_is_upper_bound,
    -100.0 * (kcal_total / days_observed / dynamic_kcal_per_kg_day)
        * (1 - exp(-days_observed / dynamic_time_constant_days)) / prediction_mass_kg AS dynamic_weight_change_pct,
    prediction_mass_kg,
    body_fat_end_pct - body_fat_start_pct AS body_fat_change_points,
    sessions,
    days_observed,
    complete,
    protocol_weeks_met,
    complete AND protocol_weeks_met >= study_weeks AS matches_study_protocol,
    weight_start_at,
    weight_end_at,
    body_fat_start_at,
    body_fat_end_at,
    CASE
        WHEN weight_start_kg IS NOT NULL THEN NULL
        WHEN NOT has_weight THEN 'no weight measurements for this athlete'
        ELSE printf('no weight measurement within %g days of %s', measurement_tolerance_days, window_start)
    END AS weight_start_reason,
    CASE
        WHEN weight_end_kg IS NOT NULL THEN NULL
        WHEN NOT complete THEN printf('window not over: data ends %s', last_day)
        WHEN NOT has_weight THEN 'no weight measurements for this athlete'
        ELSE printf('no weight measurement within %g days of %s', measurement_tolerance_days, window_end + 1)
    END AS weight_end_reason,
    CASE
        WHEN body_fat_start_pct IS NOT NULL THEN NULL
        WHEN NOT has_body_fat THEN 'no body fat measurements for this athlete'
        ELSE printf('no body fat measurement within %g days of %s', measurement_tolerance_days, window_start)
    END AS body_fat_start_reason,
    CASE
        WHEN body_fat_end_pct IS NOT NULL THEN NULL
        WHEN NOT complete THEN printf('window not over: data ends %s', last_day)
        WHEN NOT has_body_fat THEN 'no body fat measurements for this athlete'
        ELSE printf('no body fat measurement within %g days of %s', measurement_tolerance_days, window_end + 1)
    END AS body_fat_end_reason
FROM joined
