"""The Reporting service (docs/architecture.md §10): usage events appended to the remote `reporting_backend` schema,
accounts/users in the local store, usage reports as CSV/JSON/HTML.

  events.py   the event model as data + validation     usage.py    the pure report computation
  service.py  ReportingService: record() / usage()     render.py   report document → csv/json/html
  api.py      HTTP at /services/Reporting (serve)      commands.py `eucadb report …`
  accounts.py local accounts/users (store rev 0005)
"""
