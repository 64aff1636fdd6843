//! The gateway's per-request path without the network: what the stack itself costs.
//!
//! `cargo bench --bench proxy_path`. The stack is the one `Gateway::from_config` builds
//! for `bench/portcullis.toml` (request id, access log off, panic guard, router, then
//! per route hop-by-hop hygiene and the HS256 JWT guard with the token cache on), built
//! through the public [`Gateway::builder`], with a leaf that answers 200 and a fixed
//! 74-byte JSON body where the real gateway has its [`portcullis::Proxy`]. Each request
//! is what hyper hands the gateway: a `GET /api/items` with `Host` and `Authorization`
//! (header values shared, as hyper slices them from its read buffer), tagged with the
//! peer's address as the server does, called through a clone of the service with
//! `oneshot`; its response body is read to the end and dropped.
//!
//! Scenarios: `guarded_route/cache_hit` (a valid token, verified once, then a cache
//! hit), `guarded_route/no_token_401` (no `Authorization`: the guard answers) and
//! `open_route` (the same stack without a guard, as a config without `[jwt]` builds it).
//!
//! Before criterion runs, a counting global allocator (around mimalloc, the binary's
//! allocator) prints the heap allocations and bytes per request of each scenario, and of
//! building the request alone: the number to drive towards zero.

#![expect(clippy::panic, reason = "a benchmark that cannot set up should stop")]
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::alloc::{GlobalAlloc, Layout};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use portcullis::guard::AuthMode;
use portcullis::jwt::{
    Algorithm, Authenticator, Issuer, KeyMaterial, KeySet, KeySpec, MemoryRevocationStore,
    RequiredTyp, TokenCache, TokenRequest, Validation, Verifier,
};
use portcullis::proxy::HopByHopLayer;
use portcullis::{Body, ClientAddr, Gateway, GatewayService, JwtGuardLayer, RouteInfo};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Counts every allocation (and reallocation) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is mimalloc underneath.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

/// Allocations and bytes allocated so far.
fn counters() -> (u64, u64) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The secret length `scripts/bench.sh` uses by default (45 bytes).
const SECRET: &[u8] = b"portcullis-benchmark-secret-of-forty-five-b!!";
/// What the nginx upstream of `scripts/bench.sh` answers (74 bytes).
const UPSTREAM_BODY: &[u8] =
    b"{\"id\":42,\"name\":\"widget\",\"price\":9.99,\"tags\":[\"bench\",\"fixed\"],\"ok\":true}\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The guard `Gateway::from_config` builds for `bench/portcullis.toml`'s route, and a
/// token it accepts (minted by the library's own issuer: `typ: at+jwt`, `kid`, `exp`).
fn guard_and_token() -> (JwtGuardLayer, HeaderValue) {
    let spec = KeySpec {
        kid: "bench".into(),
        algorithm: Algorithm::HS256,
        material: KeyMaterial::Secret(SECRET.to_vec()),
    };
    let keys = KeySet::new(vec![spec], Some("bench")).unwrap_or_else(|e| panic!("{e}"));
    let validation = Validation::new("portcullis", "api")
        .with_leeway(Duration::from_secs(30))
        .with_required_typ(Some(RequiredTyp::AccessToken));
    let authenticator = Authenticator::new(
        Verifier::new(keys.clone(), validation),
        TokenCache::new(100_000, Duration::from_secs(3600)),
        Arc::new(MemoryRevocationStore::new(100_000)),
    );
    let request = TokenRequest {
        subject: "bench-user".into(),
        ttl: Duration::from_secs(2 * 3600),
        scope: Some("read write".into()),
        ..TokenRequest::default()
    };
    let token = Issuer::new(keys, "portcullis".into(), "api".into())
        .and_then(|issuer| issuer.issue(request, now()))
        .unwrap_or_else(|e| panic!("cannot mint the token: {e}"))
        .token;
    let bearer = HeaderValue::try_from(format!("Bearer {token}"))
        .unwrap_or_else(|e| panic!("not a header value: {e}"));
    let guard = JwtGuardLayer::new(authenticator)
        .with_mode(AuthMode::Required)
        .with_realm("portcullis");
    (guard, bearer)
}

/// The gateway with one `/api` route, as `Gateway::from_config` assembles it (hygiene,
/// then the guard if any), in front of a leaf that stands in for the proxy.
fn gateway(guard: Option<JwtGuardLayer>) -> GatewayService {
    let leaf = service_fn(
        |_req: Request<Body>| -> Ready<Result<Response<Body>, Infallible>> {
            let mut response = Response::new(Body::from(Bytes::from_static(UPSTREAM_BODY)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            ready(Ok(response))
        },
    );
    let route = ServiceBuilder::new()
        .layer(HopByHopLayer)
        .option_layer(guard)
        .service(leaf);
    let info = RouteInfo {
        name: "/api".into(),
        upstream: Some("http://127.0.0.1:18401".into()),
    };
    Gateway::builder()
        .access_log(false)
        .route_with_info("/api", info, route)
        .build()
        .service()
}

/// One scenario: a service and the request headers hyper would hand it.
struct Scenario {
    name: &'static str,
    service: GatewayService,
    authorization: Option<HeaderValue>,
    expect: StatusCode,
}

const HOST_VALUE: HeaderValue = HeaderValue::from_static("127.0.0.1:18405");
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

/// The request as the server passes it on: parsed by hyper, tagged with the peer.
fn request(authorization: Option<&HeaderValue>) -> Request<Body> {
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = Uri::from_static("/api/items");
    let headers = req.headers_mut();
    headers.insert(HOST, HOST_VALUE);
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, value.clone());
    }
    req.extensions_mut().insert(ClientAddr(PEER));
    req
}

/// Sends one request through the stack and reads the response to its end.
async fn one(service: &GatewayService, authorization: Option<&HeaderValue>) -> StatusCode {
    let req = request(authorization);
    let Ok(response) = service.clone().oneshot(req).await;
    let status = response.status();
    let mut body = std::pin::pin!(response.into_body());
    while let Some(frame) = body.as_mut().frame().await {
        if frame.is_err() {
            panic!("the response body failed");
        }
        drop(black_box(frame));
    }
    status
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"))
}

fn scenarios() -> Vec<Scenario> {
    let (guard, bearer) = guard_and_token();
    let guarded = gateway(Some(guard));
    vec![
        Scenario {
            name: "guarded_route/cache_hit",
            service: guarded.clone(),
            authorization: Some(bearer.clone()),
            expect: StatusCode::OK,
        },
        Scenario {
            name: "guarded_route/no_token_401",
            service: guarded,
            authorization: None,
            expect: StatusCode::UNAUTHORIZED,
        },
        Scenario {
            name: "open_route",
            service: gateway(None),
            authorization: Some(bearer),
            expect: StatusCode::OK,
        },
    ]
}

/// Allocations and bytes per request over `n` requests (after a warm-up that also fills
/// the token cache), on the current thread only: nothing else runs meanwhile.
fn allocations(rt: &tokio::runtime::Runtime, scenario: &Scenario, n: u64) -> (f64, f64) {
    rt.block_on(async {
        for _ in 0..1_000 {
            let status = one(&scenario.service, scenario.authorization.as_ref()).await;
            if status != scenario.expect {
                panic!("{}: {status}, expected {}", scenario.name, scenario.expect);
            }
        }
        let (a, b) = counters();
        for _ in 0..n {
            black_box(one(&scenario.service, scenario.authorization.as_ref()).await);
        }
        let (a2, b2) = counters();
        ((a2 - a) as f64 / n as f64, (b2 - b) as f64 / n as f64)
    })
}

fn print_allocations(rt: &tokio::runtime::Runtime, scenarios: &[Scenario]) {
    const N: u64 = 10_000;
    // What building (and dropping) the request costs before the gateway sees it; hyper
    // and the server's `ClientAddr` tag pay the same. Included in the lines below.
    let bearer = scenarios.iter().find_map(|s| s.authorization.as_ref());
    let (a, b) = counters();
    for _ in 0..N {
        drop(black_box(request(bearer)));
    }
    let (a2, b2) = counters();
    println!(
        "{:<28} allocations per request: {:.2} (bytes: {:.0})",
        "request alone (included)",
        (a2 - a) as f64 / N as f64,
        (b2 - b) as f64 / N as f64,
    );
    for scenario in scenarios {
        let (allocs, bytes) = allocations(rt, scenario, N);
        println!(
            "{:<28} allocations per request: {allocs:.2} (bytes: {bytes:.0})",
            scenario.name
        );
    }
}

fn proxy_path(c: &mut Criterion) {
    let rt = runtime();
    let scenarios = scenarios();
    print_allocations(&rt, &scenarios);
    for scenario in &scenarios {
        c.bench_function(scenario.name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(one(&scenario.service, scenario.authorization.as_ref()).await);
                    }
                    start.elapsed()
                })
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = proxy_path
}
criterion_main!(benches);
