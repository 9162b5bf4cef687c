-- Outcome windows that match the Terblanche et al. 2005 protocol (every week of the window has at
-- least study_sessions_per_week sessions with 15–45 backward minutes, window complete), beside
-- the study's reported result (body fat −2.4 %; the abstract does not say whether relative or in
-- percentage points, so both observed forms are shown).
SELECT
    o.athlete_id,
    o.window_start,
    o.window_end,
    o.backward_sessions,
    o.backward_minutes,
    o.backward_km,
    o.kcal_total,
    o.body_fat_start_pct,
    o.body_fat_end_pct,
    o.body_fat_change_pct,
    o.body_fat_change_points,
    o.weight_change_pct,
    o.predicted_weight_change_pct,
    o.dynamic_weight_change_pct,
    s.study_body_fat_change_pct,
    o.body_fat_change_pct - s.study_body_fat_change_pct AS body_fat_change_vs_study,
    o.body_fat_end_reason
FROM outcomes_6wk AS o
CROSS JOIN mart_settings AS s
WHERE o.matches_study_protocol
