//! The dashboard's counters: values read from the metrics recorder, grouped and named for people
//! ("Messages delivered to other servers: 12 messages"), never shown as Prometheus names.

use std::collections::BTreeSet;

use maud::{html, Markup};

use crate::state::Sample;

/// One shown value: what it counts and the number with its unit.
struct Row {
    label: String,
    value: String,
}

/// A titled group of rows.
struct Group {
    title: &'static str,
    rows: Vec<Row>,
}

/// The samples, with sums over the ones that match a name and labels.
struct Values<'a>(&'a [Sample]);

impl Values<'_> {
    /// The sum of every sample named `name` whose labels include all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
            .sum()
    }

    /// The values of label `key` among the samples named `name`, sorted.
    fn label_values(&self, name: &str, key: &str) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.label(key))
            .collect()
    }

    /// The mean of a histogram's observations in milliseconds, if it has any.
    fn mean_ms(&self, name: &str) -> Option<f64> {
        let count = self.sum(&format!("{name}_count"), &[]);
        (count > 0.0).then(|| self.sum(&format!("{name}_sum"), &[]) / count * 1000.0)
    }
}

/// A count as a whole number (an empty sum of floats is -0).
fn whole(n: f64) -> u64 {
    n.max(0.0).round() as u64
}

/// "1 message", "12 messages": a whole count with its unit.
fn count(n: f64, one: &str, many: &str) -> String {
    let n = whole(n);
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How a service's name reads on the dashboard.
fn service_name(service: &str) -> String {
    match service {
        "smtp" => "SMTP (MX)".to_owned(),
        "submission" | "submissions" => format!("SMTP {service}"),
        "imap" | "imaps" => service.to_uppercase(),
        "admin" | "admin-web" => "Admin web".to_owned(),
        "dns" => "DNS over TCP".to_owned(),
        "account" => "Account page".to_owned(),
        other => other.to_owned(),
    }
}

fn row(label: impl Into<String>, value: String) -> Row {
    Row {
        label: label.into(),
        value,
    }
}

fn mail(v: &Values) -> Group {
    let messages = |n| count(n, "message", "messages");
    let received = |source, result| {
        v.sum(
            "postern_smtp_messages_total",
            &[("source", source), ("result", result)],
        )
    };
    let outbound = |result| v.sum("postern_smtp_outbound_total", &[("result", result)]);
    let refused = |reason| v.sum("postern_smtp_policy_refusals_total", &[("reason", reason)]);
    let mut rows = vec![
        row(
            "Messages received from other servers",
            messages(received("mx", "accepted")),
        ),
        row(
            "Messages submitted by users",
            messages(received("submission", "accepted")),
        ),
        row(
            "Messages delivered to other servers",
            messages(outbound("delivered")),
        ),
        row(
            "Delivery attempts deferred (retried later)",
            count(outbound("deferred"), "attempt", "attempts"),
        ),
        row(
            "Messages bounced (refused or expired)",
            messages(outbound("bounced") + outbound("expired")),
        ),
        row(
            "Messages filed as junk",
            messages(v.sum("postern_smtp_junk_total", &[])),
        ),
        row(
            "Messages refused at the end of DATA",
            messages(v.sum("postern_smtp_messages_total", &[("result", "refused")])),
        ),
        row(
            "Messages refused: mailbox full",
            messages(v.sum("postern_smtp_messages_total", &[("result", "mailbox_full")])),
        ),
        row(
            "Refused by a block list",
            count(refused("dnsbl"), "client", "clients"),
        ),
        row(
            "Deferred by greylisting",
            count(refused("greylist"), "recipient", "recipients"),
        ),
        row("Refused by DMARC policy", messages(refused("dmarc"))),
    ];
    if let Some(ms) = v.mean_ms("postern_smtp_command_duration_seconds") {
        rows.push(row(
            "SMTP command time (AUTH, MAIL, RCPT, DATA), mean",
            format!("{ms:.1} ms"),
        ));
    }
    Group {
        title: "Mail",
        rows,
    }
}

fn logins(v: &Values) -> Group {
    let mut rows = Vec::new();
    for service in v.label_values("postern_logins_total", "service") {
        let n = |result| {
            whole(v.sum(
                "postern_logins_total",
                &[("service", service), ("result", result)],
            ))
        };
        rows.push(row(
            format!("{} logins", service_name(service)),
            format!(
                "{} succeeded, {} failed, {} throttled",
                n("success"),
                n("failure"),
                n("throttled")
            ),
        ));
    }
    Group {
        title: "Logins",
        rows,
    }
}

fn connections(v: &Values) -> Group {
    let mut rows = Vec::new();
    for service in v.label_values("postern_connections_total", "service") {
        let accepted = v.sum(
            "postern_connections_total",
            &[("service", service), ("result", "accepted")],
        );
        let all = v.sum("postern_connections_total", &[("service", service)]);
        let open = v.sum("postern_connections_active", &[("service", service)]);
        rows.push(row(
            format!("{} connections", service_name(service)),
            format!(
                "{} open now; {} accepted, {} refused since start",
                whole(open),
                whole(accepted),
                whole(all - accepted)
            ),
        ));
    }
    for service in v.label_values("postern_sessions_active", "service") {
        let n = v.sum("postern_sessions_active", &[("service", service)]);
        rows.push(row(
            format!("{} sessions logged in now", service_name(service)),
            count(n, "session", "sessions"),
        ));
    }
    if let Some(ms) = v.mean_ms("postern_imap_command_duration_seconds") {
        rows.push(row("IMAP command time, mean", format!("{ms:.1} ms")));
    }
    Group {
        title: "Connections and sessions",
        rows,
    }
}

fn dns(v: &Values) -> Group {
    let queries = |n| count(n, "query", "queries");
    let responses = |kind| v.sum("postern_dns_responses_total", &[("kind", kind)]);
    let mut rows = Vec::new();
    if responses("all") == 0.0 {
        // No DNS service here, or nothing asked yet.
        return Group { title: "DNS", rows };
    }
    for view in v.label_values("postern_dns_queries_total", "view") {
        let n = v.sum("postern_dns_queries_total", &[("view", view)]);
        let label = if view == "none" {
            "DNS queries matching no view (refused)".to_owned()
        } else {
            format!("DNS queries in view {view}")
        };
        rows.push(row(label, queries(n)));
    }
    rows.extend([
        row(
            "DNS requests answered",
            count(responses("all"), "request", "requests"),
        ),
        row("Answered REFUSED", queries(responses("refused"))),
        row(
            "Answered NXDOMAIN (no such name)",
            queries(responses("nxdomain")),
        ),
        row(
            "Answered truncated (retry over TCP)",
            queries(responses("truncated")),
        ),
        row(
            "Zone transfers served",
            count(responses("transfer"), "transfer", "transfers"),
        ),
        row(
            "Dynamic updates applied",
            count(responses("update"), "update", "updates"),
        ),
        row(
            "Responses withheld by rate limiting",
            count(
                v.sum("postern_dns_rrl_total", &[("action", "limited")]),
                "response",
                "responses",
            ),
        ),
    ]);
    if let Some(ms) = v.mean_ms("postern_dns_query_duration_seconds") {
        rows.push(row("DNS answer time, mean", format!("{ms:.2} ms")));
    }
    Group { title: "DNS", rows }
}

/// The counters section of the dashboard.
pub(crate) fn counters(samples: &[Sample]) -> Markup {
    let v = Values(samples);
    let groups = [mail(&v), logins(&v), connections(&v), dns(&v)];
    html! {
        @for g in groups.iter().filter(|g| !g.rows.is_empty()) {
            h3 { (g.title) }
            table.counters {
                tbody {
                    @for r in &g.rows { tr { th scope="row" { (r.label) } td { (r.value) } } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    #[test]
    fn shows_people_labels_and_units() {
        let samples = [
            sample(
                "postern_smtp_outbound_total",
                &[("result", "delivered")],
                12.0,
            ),
            sample("postern_dns_queries_total", &[("view", "internal")], 1.0),
            sample("postern_dns_queries_total", &[("view", "external")], 7.0),
            sample("postern_dns_responses_total", &[("kind", "all")], 8.0),
            sample(
                "postern_logins_total",
                &[("service", "imap"), ("result", "failure")],
                2.0,
            ),
            sample("postern_dns_query_duration_seconds_count", &[], 4.0),
            sample("postern_dns_query_duration_seconds_sum", &[], 0.002),
        ];
        let html = counters(&samples).into_string();
        for shown in [
            "Messages delivered to other servers</th><td>12 messages",
            "DNS queries in view internal</th><td>1 query",
            "DNS queries in view external</th><td>7 queries",
            "IMAP logins</th><td>0 succeeded, 2 failed, 0 throttled",
            "DNS answer time, mean</th><td>0.50 ms",
        ] {
            assert!(html.contains(shown), "{shown} in {html}");
        }
        assert!(!html.contains("postern_"), "{html}");
    }
}
