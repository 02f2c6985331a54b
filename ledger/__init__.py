"""The write side, pure: every decision the sync makes, as events on one aggregate per meeting.

``meeting.py`` (the aggregate), ``meeting_state.py`` (what the rules and the planner read),
``rules.py`` (one function per rule id), ``decision.py``, ``writes.py`` (the writes a state
calls for), ``fields.py`` (the fields both calendars share), ``observations.py`` (what an
adapter hands in), ``identity.py``, ``settings.py``, ``org.py``, ``timezones.py``,
``intake.py`` (routing and batching), ``store.py`` (the event store and its side tables:
the only module here that opens a database), ``codec.py``, ``gc_passes.py``.

Imports nothing from ``projections`` or ``adapters``; reads no clock and no network: "now"
is the observation's ``observed_at``.
"""
