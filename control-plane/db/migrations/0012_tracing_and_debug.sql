-- The W3C traceparent of the call that wrote an outbox row (a revocation or rotation), when
-- tracing is on: the relay's publishes and each node's application of the event join that
-- call's trace. Null for rows written without tracing, and for every older row.
ALTER TABLE outbox ADD COLUMN trace_parent text;

-- Whether a team's keys may ask a node for its decision's timings and path (`Proxy-Debug: 1`).
ALTER TABLE teams ADD COLUMN debug_enabled boolean NOT NULL DEFAULT false;
