//! Prometheus metrics: the exporter and the series' descriptions.

use std::net::SocketAddr;

/// Installs the Prometheus exporter serving `/metrics` on `addr` (once per process) and
/// describes every series Tern records.
pub(crate) fn install(addr: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| e.to_string())?;
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!("tern_peers", "Connected peers by direction and client");
    describe_gauge!("tern_best_block", "Number of the stored best block");
    describe_gauge!("tern_sync_target", "Best head any peer claims");
    describe_gauge!("tern_sync_gap", "Blocks between our head and the sync target");
    describe_counter!("tern_headers_downloaded_total", "Headers received from peers");
    describe_counter!("tern_bodies_downloaded_total", "Bodies received from peers");
    describe_counter!("tern_requests_served_total", "Requests answered, by type");
    describe_counter!("tern_request_timeouts_total", "Requests to peers that timed out");
    describe_counter!("tern_reputation_changes_total", "Penalties applied, by reason");
    describe_counter!("tern_bans_total", "Peers banned, by reason");
    describe_counter!("tern_disconnects_total", "Sessions ended, by reason");
    describe_counter!("tern_p2p_bytes_in_total", "RLPx frame bytes received (decrypted)");
    describe_counter!("tern_p2p_bytes_out_total", "RLPx frame bytes sent (before encryption)");
    Ok(())
}
