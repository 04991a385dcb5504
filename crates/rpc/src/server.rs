//! The server: HTTP and WebSocket on one port, with the configured limits and metrics.

use crate::{admin, clique, context::RpcContext, eth, pubsub};
use jsonrpsee::{
    core::middleware::{Batch, Notification, RpcServiceBuilder, RpcServiceT},
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle},
    types::Request,
    MethodResponse, RpcModule,
};
use std::{collections::HashSet, future::Future, net::SocketAddr, sync::Arc, time::Instant};

/// The RPC module with every method.
pub fn rpc_module(
    ctx: RpcContext,
) -> Result<RpcModule<RpcContext>, jsonrpsee::core::RegisterMethodError> {
    let is_clique = ctx.clique.is_some();
    let mut m = RpcModule::new(ctx);
    eth::register(&mut m)?;
    admin::register(&mut m)?;
    if is_clique {
        clique::register(&mut m)?;
    }
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending, ctx, _| pubsub::subscribe(params, pending, ctx),
    )?;
    Ok(m)
}

/// Records calls by method (`tern_rpc_calls_total`, `tern_rpc_errors_total`,
/// `tern_rpc_call_seconds`); the label is one of our method names, never what a client
/// sent.
#[derive(Debug, Clone)]
struct Metrics<S> {
    inner: S,
    methods: Arc<HashSet<&'static str>>,
}

impl<S> Metrics<S> {
    fn label(&self, method: &str) -> &'static str {
        self.methods.get(method).copied().unwrap_or("unknown")
    }
}

impl<S> RpcServiceT for Metrics<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let method = self.label(req.method_name());
        let inner = self.inner.clone();
        async move {
            let start = Instant::now();
            let rp = inner.call(req).await;
            metrics::counter!("tern_rpc_calls_total", "method" => method).increment(1);
            if rp.is_error() {
                metrics::counter!("tern_rpc_errors_total", "method" => method).increment(1);
            }
            metrics::histogram!("tern_rpc_call_seconds", "method" => method)
                .record(start.elapsed().as_secs_f64());
            rp
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        metrics::counter!("tern_rpc_batches_total").increment(1);
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// Subscription ids as geth writes them: `0x` and 32 random hex digits.
#[derive(Debug)]
struct HexIds;

impl jsonrpsee::server::IdProvider for HexIds {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        format!("0x{:032x}", rand::random::<u128>()).into()
    }
}

/// Starts JSON-RPC over HTTP and WebSocket on `addr` (one port, as geth's and reth's
/// `--http` and `--ws` can share one); returns the handle and the bound address.
pub async fn start_rpc(
    addr: SocketAddr,
    ctx: RpcContext,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let c = ctx.config.clone();
    let config = ServerConfig::builder()
        .max_request_body_size(c.max_request_size)
        .max_response_body_size(c.max_response_size)
        .max_connections(c.max_connections)
        .max_subscriptions_per_connection(c.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(c.max_batch_size))
        .set_id_provider(HexIds)
        .build();
    let module = rpc_module(ctx).map_err(std::io::Error::other)?;
    let methods: Arc<HashSet<&'static str>> = Arc::new(module.method_names().collect());
    let middleware =
        RpcServiceBuilder::new().layer_fn(move |inner| Metrics { inner, methods: methods.clone() });
    let server =
        Server::builder().set_config(config).set_rpc_middleware(middleware).build(addr).await?;
    let local = server.local_addr()?;
    Ok((server.start(module), local))
}
