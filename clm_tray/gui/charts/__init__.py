"""QtCharts views of the dashboard: feature importance, accuracy across versions, drift.

Imported only when the dashboard first opens, so QtCharts never slows the tray's cold start.
One module per chart; ``lazy_view`` holds what they share (draw only while visible, in
parts), ``axes`` the round-number axis ranges.
"""
