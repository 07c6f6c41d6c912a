"""The code-execution sandbox service (standard library only, so it runs unchanged on the host and in
its container). Modules: ``server`` (HTTP API, start-up, lease), ``http11`` (the HTTP server),
``jails`` (warm jails and executions), ``agent`` (runs inside each jail), ``hostuids`` (host-wide uid
allocation), ``cgroups`` (per-jail memory and pids caps), ``limits``, ``output``.
"""
