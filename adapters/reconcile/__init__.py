"""Reconciliation: full reads of both calendars, drift by class, a reviewable repair plan."""
