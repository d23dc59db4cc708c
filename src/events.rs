//! Keeps the latest warnings and errors logged, for the admin dashboard ("recent errors"), in a
//! bounded ring buffer fed by a `tracing` layer.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// How many events are kept.
const CAPACITY: usize = 50;

/// The shared buffer of recent warnings and errors.
#[derive(Clone, Default)]
pub struct RecentEvents(Arc<Mutex<VecDeque<String>>>);

impl RecentEvents {
    /// The kept events, oldest first.
    pub fn snapshot(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() == CAPACITY {
                q.pop_front();
            }
            q.push_back(line);
        }
    }
}

/// Formats an event's message and fields on one line.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RecentEvents {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let now = time::OffsetDateTime::now_utc();
        let stamp = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut line = Line(format!("{stamp} {level} {}: ", event.metadata().target()));
        event.record(&mut line);
        self.push(line.0.trim_end().to_owned());
    }
}
