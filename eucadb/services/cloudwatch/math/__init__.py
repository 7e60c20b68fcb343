"""Metric math for GetMetricData and alarms: lexer → parser (AST) → evaluation over aligned series.

AWS semantics followed are those of "Metric math syntax and functions" (CloudWatch User Guide,
using-metric-math.html); each function's module says where it departs or where AWS is silent.
"""
