//! The metrics recorder of `postern serve`. Every crate reports through the `metrics` facade; one
//! recorder fans each report out to the Prometheus exporter (rendered on `/metrics`, with HELP
//! and TYPE lines and histogram buckets) and to a registry of current values that the dashboard
//! reads as numbers. The queue gauges are read from the store when `/metrics` is scraped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::FanoutBuilder;
use metrics_util::registry::{Registry, Storage};
use postern_admin_web::{MetricsSource, Sample};
use postern_store::Store;
use tokio_util::sync::CancellationToken;

/// Upper bounds of the latency histograms' buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often the exporter's histograms are compacted when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The installed recorder's two read sides.
#[derive(Clone)]
pub struct Metrics {
    prometheus: PrometheusHandle,
    values: Arc<Values>,
}

impl Metrics {
    /// Installs the process-wide recorder and describes every metric. Call once, before any
    /// service starts.
    pub fn install() -> anyhow::Result<Metrics> {
        let prometheus = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .context("histogram buckets")?
            .build_recorder();
        let handle = prometheus.handle();
        let values = Arc::new(Values::default());
        let fanout = FanoutBuilder::default()
            .add_recorder(prometheus)
            .add_recorder(ValueRecorder(values.clone()))
            .build();
        metrics::set_global_recorder(fanout)
            .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
        describe();
        Ok(Metrics {
            prometheus: handle,
            values,
        })
    }

    /// Compacts the exporter's histograms every few seconds until `shutdown`.
    pub fn spawn_upkeep(&self, shutdown: CancellationToken) {
        let handle = self.prometheus.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => handle.run_upkeep(),
                }
            }
        });
    }

    /// The admin server's view: `/metrics` with the queue gauges fresh from `store`, and the
    /// current values.
    pub fn source(&self, store: Store) -> Arc<dyn MetricsSource> {
        Arc::new(Source {
            metrics: self.clone(),
            store,
        })
    }
}

/// Describes the metrics of every crate and of the binary itself.
fn describe() {
    postern_net::describe_metrics();
    postern_store::login::describe_metrics();
    postern_smtp::describe_metrics();
    postern_imap::describe_metrics();
    postern_dns::describe_metrics();
    metrics::describe_gauge!(
        "postern_queue_messages",
        "Messages in the outbound queue (of every node sharing the database), by state: new \
         (not tried yet) or deferred (waiting for a retry)."
    );
    metrics::describe_gauge!(
        "postern_start_time_seconds",
        Unit::Seconds,
        "When this process started, in Unix seconds."
    );
    metrics::gauge!("postern_start_time_seconds").set(postern_store::unix_now() as f64);
}

/// Sets the queue gauges from the store's counts.
async fn refresh_queue(store: &Store) {
    match store.counts().await {
        Ok(counts) => {
            for (state, n) in [
                ("new", counts.queue.new),
                ("deferred", counts.queue.deferred),
            ] {
                metrics::gauge!("postern_queue_messages", "state" => state).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "queue gauges not refreshed"),
    }
}

struct Source {
    metrics: Metrics,
    store: Store,
}

impl MetricsSource for Source {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            refresh_queue(&self.store).await;
            self.metrics.prometheus.render()
        })
    }

    fn samples(&self) -> Vec<Sample> {
        self.metrics.values.samples()
    }
}

/// Current values: counters and gauges as they are, histograms as their count and sum.
struct Values(Registry<Key, ValueStorage>);

impl Default for Values {
    fn default() -> Values {
        Values(Registry::new(ValueStorage))
    }
}

impl Values {
    fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        let sample = |key: &Key, suffix: &str, value: f64| Sample {
            name: format!("{}{suffix}", key.name()),
            labels: key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            value,
        };
        self.0.visit_counters(|key, c| {
            out.push(sample(key, "", c.load(Ordering::Relaxed) as f64));
        });
        self.0.visit_gauges(|key, g| {
            out.push(sample(key, "", f64::from_bits(g.load(Ordering::Relaxed))));
        });
        self.0.visit_histograms(|key, h| {
            out.push(sample(
                key,
                "_count",
                h.count.load(Ordering::Relaxed) as f64,
            ));
            let sum = f64::from_bits(h.sum_bits.load(Ordering::Relaxed));
            out.push(sample(key, "_sum", sum));
        });
        out
    }
}

/// Atomic counters and gauges, and [`Totals`] for histograms.
struct ValueStorage;

impl Storage<Key> for ValueStorage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<Totals>;

    fn counter(&self, _: &Key) -> Arc<AtomicU64> {
        Arc::default()
    }

    fn gauge(&self, _: &Key) -> Arc<AtomicU64> {
        Arc::default()
    }

    fn histogram(&self, _: &Key) -> Arc<Totals> {
        Arc::default()
    }
}

/// A histogram reduced to what a mean needs.
#[derive(Debug, Default)]
struct Totals {
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl HistogramFn for Totals {
    fn record(&self, value: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let add = |bits| Some((f64::from_bits(bits) + value).to_bits());
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add);
    }
}

/// Feeds [`Values`].
struct ValueRecorder(Arc<Values>);

impl Recorder for ValueRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
             .0
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
             .0
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
             .0
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}
