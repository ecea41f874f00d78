"""Schedules as code: the declarations in `schedules/`, checked against the code
and compared, by meaning, with what the live Temporal server runs.

    model.py     one declaration (id, workflow, queue, cron, input, policy, ...)
    cron.py      5-field cron -> calendar sets, the way the server stores them
    load.py      declarations from `schedules/*.json` or from Terraform HCL
    check.py     a declaration against the role registry (workflow, queue, input)
    live.py      the live schedules, read with describe()
    diff.py      declared vs live, field by field
    apply.py     create, update and (with prune) delete until the server matches
"""
