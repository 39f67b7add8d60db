"""The HTTP graph API: the part of the LangGraph Server protocol that the official
`langgraph-sdk` client and `langgraph.pregel.remote.RemoteGraph` use, in front of any compiled
LangGraph graph, with tenants.

    from graph.serving.app import create_app
    from graph.serving.settings import ServerSettings
    app = create_app(lambda saver: builder.compile(checkpointer=saver), keys, settings)

`server.py` builds this app for the planning graph (`create_rmn_app`), which `rmn serve`
(cli/serve.py) serves.

Protocol. Assistants (search, count, get, schemas, graph): one assistant per server, addressed by
its graph id or its UUID. Threads (create, get, patch, delete, search, count, state, state at a
checkpoint, history). Runs on a thread or stateless (create, wait, stream over SSE, list, get,
cancel, join, join-stream, delete). Streams send `metadata` first, then one event per chunk in the
requested modes (`values`, `updates`, `custom`) as single-line JSON, and `error` on failure; an
interrupt comes as an `updates` event `{"__interrupt__": [{"value", "id"}]}` (as a `values` event
when `updates` was not asked for). `wait` and `join` answer the thread's values, with
`__interrupt__` while an interrupt is pending (newlines are sent while they wait, so long runs
are not cut by read timeouts). Resuming is a run with `command: {"resume": ...}`, checked before
it starts against the interrupt's `response_schema` (else `resume_model`), and against the
caller's right to give it (`policy`: roles, separation of duties). An answer is for the
question pending when it was sent (one queued behind another run is pinned to that interrupt's
id): an interrupt id no longer pending, or a plan version (`answer_version`) other than the
pending question's (`question_ref`), is 409 `stale_decision` naming the current question, and a
queued answer found stale when it starts ends its run with that error. Requests are checked too:
JSON bodies up to `max_body_bytes` and with finite numbers only (NaN, Infinity and 1e400 are
422), the graph's input schema plus `validate_input`, search and history filters; errors are
JSON `{"type", "message", ...}` with a 4xx status, never a stack trace. Answers are strict JSON:
a non-finite number in the state is sent as null.

Tenants. With API keys configured (`x-api-key`), every thread and run belongs to the tenant of
the key that made it, and each key has a role (planner, approver, admin). Thread ids are each
tenant's own (kept under `<tenant>.<id>`): another tenant's thread answers exactly like an id
nobody uses, on every route. The run's context is built here: the client may set only the
fields the settings allow, the server's fields and the tenant's policy (`tenant_context`) win,
the caller's key id goes in `actor_field`, and the tenant always comes from the key. Every
request passes the gate (`auth.Gatekeeper`): wrong keys are limited per client address, and
requests per tenant (all its keys share one allowance). With no keys, the server answers
loopback clients only, all as one tenant.

Execution. Runs go to a pool of worker threads (`workers`) that takes tenants in turn, with at
most `max_running_per_tenant` running per tenant; more runs wait their turn (up to
`max_queued_per_tenant` per tenant, then 429; `max_queued_runs` in all, then 503), a tenant
keeps at most `max_threads_per_tenant` threads (then 429), and one thread's runs never overlap.
Generations of concurrent runs meet in the LLM runtime's own queue, which batches them.

Persistence. Checkpoints live in the settings' `checkpointer` (default SQLite in
`<state_dir>/checkpoints.sqlite`), threads' owners and runs in `<state_dir>/server.sqlite`, so a
restart keeps every thread and pending interrupt. A run keeps what it was asked until it ends; a
stop lets running steps finish, and the next start (after a stop or a kill) takes up every run
the process had not finished: from its thread's last checkpoint, or as asked if it had not
started. With `RMN_DATABASE_URL` (or `database_url`) naming PostgreSQL, threads and runs
live there and several servers (replicas) share them: a run is leased to the replica executing
it and taken over by another when that one dies (`replicas`). Deleting a thread erases its
checkpoints, its rows and, through `erase_thread`, what the product keeps of it; deleted rows
are overwritten on disk.

Modules, one concept each (the `langgraph-sdk` client's split by resource is the model):
    settings    ServerSettings, and the callables a product gives (graph factory, input
                validator, approval amount, tenant context, checkpointer, thread eraser)
    schemas     request bodies, strict JSON in and out, the JSON helpers of the answers
    errors      ApiError and its HTTP statuses; the JSON error answer
    policy      roles (Caller), tenant policies, separation of duties
    auth        API keys -> callers (keys files, KeyRing), the Gatekeeper (rate limits per
                tenant, wrong keys per address, loopback)
    store       threads' owners and runs, SQLite or PostgreSQL (MetaStore)
    replicas    run leases and the tick that renews and claims them (several servers)
    threads     GraphHost: the graph, its checkpointer and store; assistants, threads, state
    checks      RunChecks: what a run request must pass before it becomes a run
    scheduler   FairScheduler: the worker pool, tenants in turn
    run         Run: a run in memory, what it keeps in the store, the events it streams
    runs        GraphServer: the run queue, the executor, recovery after a restart
    routes/     one APIRouter per resource: meta, assistants, threads, runs
    app         create_app (middleware, error answers, routers, lifespan), serve_in_thread
"""
