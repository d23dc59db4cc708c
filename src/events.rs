//! Keeps the latest warnings and errors logged, for the admin dashboard ("recent errors"), in a
//! bounded ring buffer fed by a `tracing` layer. A run of events with the same message (a password
//! guesser's refused logins, say) takes one place, counted, so it cannot push real problems out.

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
pub struct RecentEvents(Arc<Mutex<VecDeque<Kept>>>);

/// One kept event: its latest line, what makes it the same event (level, target and message,
/// without the fields), and how many times in a row it happened.
struct Kept {
    line: String,
    same: String,
    times: u64,
}

impl RecentEvents {
    /// The kept events, oldest first; a repeated one as its latest line and its count.
    pub fn snapshot(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|q| {
                q.iter()
                    .map(|k| match k.times {
                        1 => k.line.clone(),
                        n => format!("{} ({n} times in a row)", k.line),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn push(&self, line: String, same: String) {
        if let Ok(mut q) = self.0.lock() {
            if let Some(last) = q.back_mut().filter(|k| k.same == same) {
                last.line = line;
                last.times += 1;
                return;
            }
            if q.len() == CAPACITY {
                q.pop_front();
            }
            q.push_back(Kept {
                line,
                same,
                times: 1,
            });
        }
    }
}

/// Formats an event's message and fields on one line, and keeps the message alone.
#[derive(Default)]
struct Line {
    line: String,
    message: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
            let _ = write!(self.line, "{value:?} ");
        } else {
            let _ = write!(self.line, "{}={value:?} ", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
            let _ = write!(self.line, "{value} ");
        } else {
            let _ = write!(self.line, "{}={value:?} ", field.name());
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
        let target = event.metadata().target();
        let mut line = Line {
            line: format!("{stamp} {level} {target}: "),
            ..Line::default()
        };
        event.record(&mut line);
        let same = format!("{level} {target}: {}", line.message);
        self.push(line.line.trim_end().to_owned(), same);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_one_message_takes_one_place() {
        let recent = RecentEvents::default();
        recent.push(
            "t0 WARN x: first problem".into(),
            "WARN x: first problem".into(),
        );
        for i in 0..500 {
            recent.push(
                format!("t{i} WARN x: login failed client=192.0.2.{}", i % 250),
                "WARN x: login failed".into(),
            );
        }
        recent.push(
            "t9 ERROR y: second problem".into(),
            "ERROR y: second problem".into(),
        );
        assert_eq!(
            recent.snapshot(),
            [
                "t0 WARN x: first problem",
                "t499 WARN x: login failed client=192.0.2.249 (500 times in a row)",
                "t9 ERROR y: second problem",
            ]
        );
        for i in 0..CAPACITY {
            recent.push(format!("e{i}"), format!("e{i}"));
        }
        assert_eq!(recent.snapshot().len(), CAPACITY, "still bounded");
    }
}
