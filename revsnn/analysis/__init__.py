"""Measurement and models of memory: tidy rows of saved bytes, memory and time
(:mod:`~revsnn.analysis.measure`), the analytic memory model (:mod:`~revsnn.analysis.memory_model`),
and the invertibility checks (:mod:`~revsnn.analysis.invertibility`).
"""
