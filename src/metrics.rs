//! Prometheus metrics with Centrifugo's names, `/metrics` and `/health`.
//!
//! Counters are recorded where things happen (through the `metrics`
//! macros); node gauges are computed from the hub when scraped.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::node::Node;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it).
pub(crate) fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Renders the exposition text, refreshing node gauges first.
pub(crate) fn render(node: &Arc<Node>) -> String {
    let stats = node.hub.stats();
    metrics::gauge!("centrifugo_node_num_clients").set(stats.clients as f64);
    metrics::gauge!("centrifugo_node_num_users").set(stats.users as f64);
    metrics::gauge!("centrifugo_node_num_channels").set(stats.channels as f64);
    metrics::gauge!("centrifugo_node_num_subscriptions").set(stats.subscriptions as f64);
    metrics::gauge!("centrifugo_node_num_nodes").set(node.num_nodes() as f64);
    metrics::gauge!("centrifugo_node_build", "version" => crate::node::VERSION).set(1.0);
    install().map(PrometheusHandle::render).unwrap_or_default()
}
