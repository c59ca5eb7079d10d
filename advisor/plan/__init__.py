"""The plan: named hardware, the fit search over recipes, time and cost, and launchable recipe files.

Data (the hardware catalog, headroom thresholds, search penalties) lives in JSON beside
the code; the search itself is arithmetic over the estimator's memory model, so it
imports torch only through the estimator's meta-device build (once per method).
"""
