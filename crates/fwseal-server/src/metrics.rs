//! Prometheus metrics (`/metrics`, for clients holding the `metrics` role on `"*"`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template (not the raw path: no unbounded cardinality).
    pub route: String,
    /// HTTP status.
    pub status: u16,
}

/// Labels of signature metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigLabels {
    /// Product.
    pub product: String,
    /// Algorithm name.
    pub alg: String,
}

/// Route-only labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    /// Route template.
    pub route: String,
}

/// Labels of rate-limit refusals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    /// `ip` or `client`.
    pub scope: String,
}

/// Labels of the built-in TSA's answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `granted` or `rejected`.
    pub outcome: String,
}

/// All metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Latency by route.
    pub latency: Family<RouteOnly, Histogram>,
    /// Signatures by product and algorithm.
    pub signatures: Family<SigLabels, Counter>,
    /// HSM errors.
    pub hsm_errors: Counter,
    /// Requests refused by a rate limit, by scope.
    pub rate_limited: Family<ScopeLabels, Counter>,
    /// Connections closed at once: their source already held `max_connections_per_ip`.
    pub connections_refused: Counter,
    /// Built-in TSA replies, by outcome (`granted`, `rejected`).
    pub timestamps: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fwseal");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let signatures = Family::<SigLabels, Counter>::default();
        let hsm_errors = Counter::default();
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        let connections_refused = Counter::default();
        let timestamps = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "timestamps",
            "Built-in TSA replies, by outcome (granted, rejected)",
            timestamps.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because their source held max_connections_per_ip",
            connections_refused.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by scope (ip, client)",
            rate_limited.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "signatures",
            "Signatures made, by product and algorithm",
            signatures.clone(),
        );
        registry.register(
            "hsm_errors",
            "HSM operations that failed",
            hsm_errors.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            signatures,
            hsm_errors,
            rate_limited,
            connections_refused,
            timestamps,
        }
    }
}

impl Metrics {
    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}
