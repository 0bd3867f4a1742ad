"""Scenario benchmark: clips rendered from labelled photos of a validation split, with per-customer
ground truth, run through the daemon's own ``CameraPipeline`` and scored per customer.

A checkout's harness, not part of the installed daemon (the wheel ships ``edge``, ``training`` and
``export``): it imports ``edge`` like any client, and training's dataset loaders.

``photos`` loads the people, ``render`` lays them out into clips (parade, queue, crossing, side by
side, CCTV-sized, crowd), ``score`` matches tracks to customers (identity switches, IDF1) and alerts
to customers (precision, recall, time to alert). ``scripts/bench_scenarios.py`` runs them all.
"""
