"""The assessment core: the answers contract, the rubric as data, the pure engine that turns
answers into a decision, dataset licences, and compute feasibility.

`service` is the entry point every door calls (`assess`, `questionnaire`); `engine`
does no I/O and imports nothing heavy.
"""
