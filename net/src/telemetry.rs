//! The edge's metrics: connections per service, and logged-in sessions (a guard the protocol
//! crates hold from a successful login to the end of the connection).

/// Describes the edge's metrics (HELP lines); call once after installing the recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "postern_connections_total",
        "Connections accepted or refused, by service and result."
    );
    metrics::describe_gauge!(
        "postern_connections_active",
        "Connections open now, by service."
    );
    metrics::describe_counter!(
        "postern_connections_evicted_total",
        "Idle connections closed to make room for a new one, by service."
    );
    metrics::describe_gauge!(
        "postern_sessions_active",
        "Logged-in sessions open now, by service."
    );
}

/// One logged-in session, counted in `postern_sessions_active{service}` while it lives.
#[derive(Debug)]
pub struct SessionGauge {
    service: &'static str,
}

impl SessionGauge {
    /// Counts a session of `service` that has just logged in.
    pub fn logged_in(service: &'static str) -> SessionGauge {
        metrics::gauge!("postern_sessions_active", "service" => service).increment(1.0);
        SessionGauge { service }
    }
}

impl Drop for SessionGauge {
    fn drop(&mut self) {
        metrics::gauge!("postern_sessions_active", "service" => self.service).decrement(1.0);
    }
}
