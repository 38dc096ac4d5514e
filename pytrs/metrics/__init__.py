"""Prometheus metrics of every stage (SPEC S11): defined in `registry`, exported by `exposition`.

Place in the flow: the stages count what they do with one-line calls on the metrics of
`registry` (counters and histograms, cheap and in memory); `exposition` renders them for
`/metrics`, adding the gauges read from the database at scrape time and the counters of this
daemon's worker child processes.
"""
