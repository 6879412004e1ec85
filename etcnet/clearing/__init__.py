"""Clearing and settlement (清分结算): the center's money day.

The set-based work of a clearing day is defined once, as SQL text that both the
embedded engine (DuckDB) and the cluster engine (Spark SQL) run
(`etcnet.clearing.definitions`); the modules that run it move the day's rows in
and out in bulk, never a Python loop per record.
"""
