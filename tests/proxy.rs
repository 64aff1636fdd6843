//! The reverse proxy, black-box: a real gateway between a real client and real
//! upstreams on loopback. Routing, path and query joining, header hygiene, forwarding
//! headers, request ids, streaming, HTTP/2, WebSocket tunnels and upstream failures.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode, Version};
use http_body_util::BodyExt;
use support::{
    Reply, TestGateway, Upstream, WAIT, config, empty, full, generated, get, h1, h2, json,
    raw_upstream, refusing_addr, send, send_with, websocket_echo,
};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// One upstream behind the usual route set:
/// `/api` (stripped), `/api/v2` (stripped, base `/v2`), `/keep` (kept, base `/base/`),
/// `/host` (kept, `preserve_host`).
async fn standard(reply: Reply) -> (Upstream, TestGateway) {
    let up = Upstream::start(reply).await;
    let gw = TestGateway::start(&config(
        "",
        &[
            ("/api", up.url(""), "strip_prefix = true"),
            ("/api/v2", up.url("/v2"), "strip_prefix = true"),
            ("/keep", up.url("/base/"), ""),
            ("/host", up.url(""), "preserve_host = true"),
        ],
    ))
    .await;
    (up, gw)
}

// === routing and paths ===

#[tokio::test]
async fn prefixes_match_on_segment_boundaries_only() {
    let (up, gw) = standard(Reply::ok()).await;
    for path in ["/api", "/api/", "/api/x", "/api/x/y"] {
        assert_eq!(
            get(&gw.url(path)).await.status(),
            200,
            "{path} is under /api"
        );
    }
    assert_eq!(up.count(), 4);
    for path in ["/apix", "/ap", "/apiv2/x", "/", "/keepx"] {
        let res = get(&gw.url(path)).await;
        assert_eq!(res.status(), 404, "{path} is not under any route");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(json(&res)["error"], "not_found");
    }
    assert_eq!(up.count(), 4, "no unrouted request reached the upstream");
}

#[tokio::test]
async fn the_longest_prefix_wins() {
    let short = Upstream::start(Reply::status(200, "short")).await;
    let long = Upstream::start(Reply::status(200, "long")).await;
    // The shorter prefix is declared first and the longer one last, and the other way
    // round: declaration order must not matter.
    for routes in [
        [
            ("/api", short.url(""), "strip_prefix = true"),
            ("/api/v2", long.url(""), "strip_prefix = true"),
        ],
        [
            ("/api/v2", long.url(""), "strip_prefix = true"),
            ("/api", short.url(""), "strip_prefix = true"),
        ],
    ] {
        let gw = TestGateway::start(&config("", &routes)).await;
        for (path, answer) in [
            ("/api/v2/x", "long"),
            ("/api/v2", "long"),
            ("/api/v2x", "short"),
            ("/api/v", "short"),
            ("/api/x/v2", "short"),
        ] {
            assert_eq!(
                get(&gw.url(path)).await.body().as_ref(),
                answer.as_bytes(),
                "{path}"
            );
        }
    }
    let long_targets: Vec<String> = long.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        long_targets,
        ["/x", "/"].repeat(2),
        "the longer prefix is the one stripped"
    );
}

#[tokio::test]
async fn strip_prefix_removes_the_route_path() {
    let (up, gw) = standard(Reply::ok()).await;
    for (path, target) in [("/api/users/7", "/users/7"), ("/api", "/"), ("/api/", "/")] {
        assert_eq!(get(&gw.url(path)).await.status(), 200);
        assert_eq!(up.last().target, target, "{path}");
    }
}

#[tokio::test]
async fn without_strip_prefix_the_whole_path_is_forwarded() {
    let up = Upstream::start(Reply::ok()).await;
    let gw = TestGateway::start(&config("", &[("/svc", up.url(""), "")])).await;
    for path in ["/svc", "/svc/", "/svc/a/b"] {
        assert_eq!(get(&gw.url(path)).await.status(), 200);
        assert_eq!(up.last().target, path);
    }
}

#[tokio::test]
async fn the_upstream_base_path_is_joined_to_the_forwarded_path() {
    let up = Upstream::start(Reply::ok()).await;
    let gw = TestGateway::start(&config(
        "",
        &[
            ("/api", up.url("/v1"), "strip_prefix = true"),
            ("/slash", up.url("/v1/"), "strip_prefix = true"),
            ("/keep", up.url("/base"), ""),
        ],
    ))
    .await;
    for (path, target) in [
        ("/api/x", "/v1/x"),
        ("/api/x/y?q=1", "/v1/x/y?q=1"),
        ("/api", "/v1"),
        ("/api/", "/v1/"),
        ("/slash/x", "/v1/x"),
        ("/keep/x", "/base/keep/x"),
    ] {
        assert_eq!(get(&gw.url(path)).await.status(), 200, "{path}");
        assert_eq!(up.last().target, target, "{path}");
    }
}

#[tokio::test]
async fn query_strings_are_kept_byte_for_byte() {
    let (up, gw) = standard(Reply::ok()).await;
    let queries = [
        "b=2&a=1",
        "a=%2F&b=%2f",
        "plus=a+b&space=a%20b",
        "empty=&flag&&=x",
        "utf=%C3%A9&raw=%E2%82%AC",
        "odd=%zz&pct=%&semi=a;b",
        "path=a/b?c=d",
        "dup=1&dup=2&dup=1",
        "token=abc.def-ghi_~",
    ];
    for client in [h1(), h2()] {
        for query in queries {
            let path = format!("/api/v2/q?{query}");
            let res = send_with(&client, Request::get(gw.url(&path)).body(empty()).unwrap()).await;
            assert_eq!(res.status(), 200, "{query}");
            assert_eq!(up.last().target, format!("/v2/q?{query}"), "{query}");
        }
    }
}

// === header hygiene ===

#[tokio::test]
async fn hop_by_hop_request_headers_and_connection_named_headers_are_removed() {
    let (up, gw) = standard(Reply::ok()).await;
    let req = Request::get(gw.url("/api/hop"))
        .header("connection", "X-Private, keep-alive")
        .header("connection", "x-other")
        .header("x-private", "1")
        .header("x-other", "2")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic eDp5")
        .header("te", "trailers")
        .header("trailer", "x-trailer")
        .header("upgrade", "foo/1")
        .header("x-normal", "kept")
        .body(empty())
        .unwrap();
    assert_eq!(send(req).await.status(), 200);
    let seen = up.last().headers;
    for name in [
        "connection",
        "x-private",
        "x-other",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(
            !seen.contains_key(name),
            "{name} reached the upstream: {seen:?}"
        );
    }
    assert_eq!(seen["x-normal"], "kept");
}

#[tokio::test]
async fn hop_by_hop_response_headers_and_connection_named_headers_are_removed() {
    let (_up, gw) = standard(Reply::with_headers(
        200,
        vec![
            ("connection", "X-Up-Secret, x-up-other"),
            ("x-up-secret", "1"),
            ("x-up-other", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-authenticate", "Basic realm=\"up\""),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x-checksum"),
            ("upgrade", "foo/1"),
            ("x-kept", "yes"),
        ],
        "hop",
    ))
    .await;
    for client in [h1(), h2()] {
        let res = send_with(
            &client,
            Request::get(gw.url("/api/hop")).body(empty()).unwrap(),
        )
        .await;
        assert_eq!(res.status(), 200);
        for name in [
            "x-up-secret",
            "x-up-other",
            "keep-alive",
            "proxy-authenticate",
            "proxy-connection",
            "trailer",
            "upgrade",
        ] {
            assert!(
                !res.headers().contains_key(name),
                "{name} reached the client over {:?}: {:?}",
                res.version(),
                res.headers()
            );
        }
        assert_eq!(res.headers()["x-kept"], "yes");
        assert_eq!(res.body().as_ref(), b"hop");
    }
}

#[tokio::test]
async fn x_forwarded_for_appends_the_peer_to_the_client_value() {
    let (up, gw) = standard(Reply::ok()).await;
    send(Request::get(gw.url("/api/f")).body(empty()).unwrap()).await;
    assert_eq!(up.last().headers["x-forwarded-for"], "127.0.0.1");

    let req = Request::get(gw.url("/api/f"))
        .header("x-forwarded-for", "203.0.113.9, 198.51.100.2")
        .body(empty())
        .unwrap();
    send(req).await;
    let seen = up.last().headers;
    assert_eq!(seen.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(
        seen["x-forwarded-for"],
        "203.0.113.9, 198.51.100.2, 127.0.0.1"
    );
}

#[tokio::test]
async fn x_forwarded_proto_and_host_are_replaced_not_trusted() {
    let (up, gw) = standard(Reply::ok()).await;
    let req = Request::get(gw.url("/api/f"))
        .header("host", "gw.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("x-real-ip", "10.9.9.9")
        .body(empty())
        .unwrap();
    send(req).await;
    let seen = up.last().headers;
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen.get_all("x-forwarded-host").iter().count(), 1);
    assert_eq!(seen["x-forwarded-host"], "gw.example");
    assert!(
        !seen.contains_key("x-real-ip"),
        "a client X-Real-IP is dropped"
    );
}

#[tokio::test]
async fn host_is_rewritten_to_the_upstream_authority() {
    let (up, gw) = standard(Reply::ok()).await;
    let req = Request::get(gw.url("/api/h"))
        .header("host", "gw.example")
        .body(empty())
        .unwrap();
    send(req).await;
    let seen = up.last().headers;
    assert_eq!(seen.get_all("host").iter().count(), 1);
    assert_eq!(seen["host"], up.addr.to_string());
}

#[tokio::test]
async fn preserve_host_keeps_the_client_host() {
    let (up, gw) = standard(Reply::ok()).await;
    let req = Request::get(gw.url("/host/h"))
        .header("host", "gw.example:8443")
        .body(empty())
        .unwrap();
    send(req).await;
    assert_eq!(up.last().headers["host"], "gw.example:8443");
    assert_eq!(up.last().target, "/host/h");
}

// === request ids ===

fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/+=@-".contains(&b))
}

#[tokio::test]
async fn a_request_id_is_generated_when_absent() {
    let (up, gw) = standard(Reply::ok()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let res = get(&gw.url("/api/id")).await;
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(is_valid_id(&id), "{id:?}");
        assert_eq!(
            up.last().headers["x-request-id"],
            id.as_str(),
            "the same id went upstream"
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each request gets its own id");
    let res = get(&gw.url("/nowhere")).await;
    assert!(
        res.headers().contains_key("x-request-id"),
        "errors carry an id too"
    );
}

#[tokio::test]
async fn a_valid_request_id_is_taken_and_sent_upstream() {
    let (up, gw) = standard(Reply::ok()).await;
    let longest = "a".repeat(128);
    for id in ["client-abc.1", "a:b/c+d=e@f_g", longest.as_str()] {
        let req = Request::get(gw.url("/api/id"))
            .header("x-request-id", id)
            .body(empty())
            .unwrap();
        let res = send(req).await;
        assert_eq!(res.headers()["x-request-id"], id);
        let seen = up.last().headers;
        assert_eq!(seen.get_all("x-request-id").iter().count(), 1);
        assert_eq!(seen["x-request-id"], id);
    }
}

#[tokio::test]
async fn an_invalid_request_id_is_replaced() {
    let (up, gw) = standard(Reply::ok()).await;
    let too_long = "a".repeat(129);
    for bad in [
        too_long.as_str(),
        "has space",
        "quo\"te",
        "a,b",
        "<script>",
        "tab\tx",
        "",
    ] {
        let req = Request::get(gw.url("/api/id"))
            .header("x-request-id", bad)
            .body(empty())
            .unwrap();
        let res = send(req).await;
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(is_valid_id(id), "{id:?}");
        let seen = up.last().headers;
        assert_eq!(seen.get_all("x-request-id").iter().count(), 1, "{bad:?}");
        assert_eq!(seen["x-request-id"], id, "the replacement went upstream");
    }
}

// === streaming ===

#[tokio::test]
async fn a_large_request_body_streams_without_buffering() {
    let (up, gw) = standard(Reply::ok()).await;
    let total: u64 = 128 * 1024 * 1024;
    // After its first chunk, the client body waits until the upstream has received a
    // byte: a gateway that buffered the body before forwarding would deadlock here.
    let body = generated(total, b'u', Some(up.first_body_byte()));
    let req = Request::post(gw.url("/api/upload")).body(body).unwrap();
    let res = send(req).await;
    assert_eq!(res.status(), 200);
    let seen = up.last();
    assert!(seen.complete && !seen.body_error);
    assert_eq!(seen.body_len, total);
}

#[tokio::test]
async fn a_large_response_body_streams_without_buffering() {
    let gate = Arc::new(Notify::new());
    let total: u64 = 64 * 1024 * 1024;
    let (_up, gw) = standard(Reply::Stream {
        total,
        gate: Some(gate.clone()),
    })
    .await;
    let res = tokio::time::timeout(
        WAIT,
        h1().request(Request::get(gw.url("/api/download")).body(empty()).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    // The upstream sends one chunk and then waits for this test: a gateway that
    // buffered the whole response would never deliver this first frame.
    let first = tokio::time::timeout(WAIT, body.frame())
        .await
        .unwrap_or_else(|_| panic!("the first bytes never arrived: the response is buffered"))
        .unwrap()
        .unwrap();
    let mut received = first.data_ref().map_or(0, |d| d.len() as u64);
    assert!(received > 0);
    gate.notify_one();
    while let Some(frame) = tokio::time::timeout(WAIT, body.frame()).await.unwrap() {
        received += frame.unwrap().data_ref().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(received, total);
}

// === protocols ===

#[tokio::test]
async fn an_http2_client_reaches_an_http1_upstream() {
    let (up, gw) = standard(Reply::Echo).await;
    let client = h2();
    let res = send_with(
        &client,
        Request::get(gw.url("/api/h2?x=1")).body(empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), Version::HTTP_2);
    let seen = up.last();
    assert_eq!(
        seen.version,
        Version::HTTP_11,
        "the upstream is spoken to in HTTP/1.1"
    );
    assert_eq!(seen.target, "/h2?x=1");
    assert_eq!(seen.headers["host"], up.addr.to_string());
    assert_eq!(
        seen.headers["x-forwarded-host"],
        gw.addr.to_string(),
        "from :authority"
    );

    let req = Request::post(gw.url("/api/echo"))
        .header("content-type", "text/plain")
        .body(full("over h2"))
        .unwrap();
    let res = send_with(&client, req).await;
    assert_eq!(res.body().as_ref(), b"over h2");
    assert_eq!(up.last().method, Method::POST);
    assert_eq!(up.last().body, b"over h2");
}

#[tokio::test]
async fn methods_and_bodies_pass_through_both_protocols() {
    let (up, gw) = standard(Reply::Echo).await;
    for client in [h1(), h2()] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let body = format!("{method} body");
            let req = Request::builder()
                .method(method.clone())
                .uri(gw.url("/api/items/1"))
                .body(full(body.clone()))
                .unwrap();
            let res = send_with(&client, req).await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.body().as_ref(), body.as_bytes());
            let seen = up.last();
            assert_eq!(seen.method, method);
            assert_eq!(seen.body, body.as_bytes());
        }
    }
}

#[tokio::test]
async fn upstream_statuses_and_bodies_pass_through_unchanged() {
    let up = Upstream::start_with(|seen| match seen.target.as_str() {
        "/missing" => Reply::status(404, "upstream 404"),
        "/broken" => Reply::status(500, "upstream 500"),
        "/teapot" => {
            Reply::with_headers(418, vec![("content-type", "text/x-tea")], "short and stout")
        }
        _ => Reply::status(204, ""),
    })
    .await;
    let gw = TestGateway::start(&config("", &[("/api", up.url(""), "strip_prefix = true")])).await;
    for (path, status, body) in [
        ("/api/missing", 404, "upstream 404"),
        ("/api/broken", 500, "upstream 500"),
        ("/api/teapot", 418, "short and stout"),
        ("/api/none", 204, ""),
    ] {
        let res = get(&gw.url(path)).await;
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(res.body().as_ref(), body.as_bytes(), "{path}");
    }
    assert_eq!(
        get(&gw.url("/api/teapot")).await.headers()["content-type"],
        "text/x-tea"
    );
}

/// The gateway with one route, `/ws` (prefix stripped, plus `route_extra`), to the
/// WebSocket echo upstream at `ws_up`; `extra` is top-level config text.
async fn ws_gateway(ws_up: std::net::SocketAddr, extra: &str, route_extra: &str) -> TestGateway {
    TestGateway::start(&config(
        extra,
        &[(
            "/ws",
            format!("http://{ws_up}/socket"),
            &format!("strip_prefix = true\n{route_extra}"),
        )],
    ))
    .await
}

/// A WebSocket handshake with the gateway for `path`.
#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn ws_connect(
    gw: &TestGateway,
    path: &str,
) -> (
    tokio_tungstenite::WebSocketStream<TcpStream>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let url = format!("ws://{}{path}", gw.addr);
    tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_websocket_echo_is_tunnelled_both_ways() {
    let (ws_up, handshakes) = websocket_echo().await;
    let gw = ws_gateway(ws_up, "", "").await;
    let (mut ws, response) = ws_connect(&gw, "/ws/chat?room=1").await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    {
        let handshakes = handshakes.lock().unwrap();
        let (target, headers) = &handshakes[0];
        assert_eq!(target, "/socket/chat?room=1");
        assert_eq!(
            headers["upgrade"].to_str().unwrap().to_ascii_lowercase(),
            "websocket"
        );
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    }
    // Several messages in flight before reading, then one at a time, text and binary.
    for i in 0..3 {
        ws.send(Message::text(format!("burst {i}"))).await.unwrap();
    }
    for i in 0..3 {
        let echoed = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), format!("burst {i}"));
    }
    for i in 0..5u8 {
        let payload = vec![i; 70_000 * usize::from(i + 1)];
        ws.send(Message::binary(payload.clone())).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed.into_data().as_ref(), payload.as_slice());
    }
    ws.close(None).await.unwrap();
    // The gateway still serves plain requests.
    assert_eq!(get(&gw.url("/healthz")).await.status(), 200);
}

#[tokio::test]
async fn a_websocket_tunnel_counts_against_the_upstream_connection_cap() {
    let (ws_up, _) = websocket_echo().await;
    let gw = ws_gateway(
        ws_up,
        "[proxy]\nmax_connections_per_host = 1\n",
        "timeout = \"300ms\"",
    )
    .await;
    let (mut ws, _) = ws_connect(&gw, "/ws/chat").await;
    ws.send(Message::text("hold")).await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .is_some()
    );
    // The tunnel holds the only slot: a plain request waits for it, past the route timeout.
    assert_eq!(get(&gw.url("/ws/plain")).await.status(), 504);
    ws.close(None).await.unwrap();
    drop(ws);
    // Once the tunnel is gone the slot is free: the request reaches the upstream (which
    // speaks only WebSocket, so it answers nothing sensible: 502, not a wait).
    let mut status = StatusCode::GATEWAY_TIMEOUT;
    for _ in 0..50 {
        status = get(&gw.url("/ws/plain")).await.status();
        if status != StatusCode::GATEWAY_TIMEOUT {
            break;
        }
    }
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

// === upstream failures ===

#[tokio::test]
async fn a_refused_upstream_is_a_json_502_naming_the_route_and_serving_goes_on() {
    let live = Upstream::start(Reply::ok()).await;
    let gw = TestGateway::start(&config(
        "",
        &[
            (
                "/down",
                format!("http://{}", refusing_addr()),
                "strip_prefix = true",
            ),
            ("/up", live.url(""), "strip_prefix = true"),
        ],
    ))
    .await;
    for _ in 0..2 {
        let res = get(&gw.url("/down/x")).await;
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(res.headers()["content-type"], "application/json");
        let body = json(&res);
        assert_eq!(body["error"], "bad_gateway");
        assert_eq!(body["route"], "/down");
        assert_eq!(
            get(&gw.url("/up/x")).await.status(),
            200,
            "the gateway keeps serving"
        );
    }
}

#[tokio::test]
async fn an_upstream_closing_the_connection_is_a_502() {
    let (addr, connections) = raw_upstream(b"").await;
    let gw = TestGateway::start(&config("", &[("/api", format!("http://{addr}"), "")])).await;
    let res = get(&gw.url("/api/x")).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json(&res)["route"], "/api");
    assert!(
        *connections.lock().unwrap() >= 1,
        "the upstream was reached"
    );
    assert_eq!(get(&gw.url("/healthz")).await.status(), 200);
}

#[tokio::test]
async fn an_upstream_answering_garbage_is_a_502() {
    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    ] {
        let (addr, _) = raw_upstream(garbage).await;
        let gw = TestGateway::start(&config("", &[("/api", format!("http://{addr}"), "")])).await;
        let res = get(&gw.url("/api/x")).await;
        assert_eq!(
            res.status(),
            StatusCode::BAD_GATEWAY,
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_eq!(json(&res)["error"], "bad_gateway");
    }
}

#[tokio::test]
async fn a_slow_upstream_is_a_json_504_naming_the_route() {
    let up = Upstream::start(Reply::Delay(Duration::from_secs(2), Box::new(Reply::ok()))).await;
    let gw = TestGateway::start(&config(
        "",
        &[(
            "/quick",
            up.url(""),
            "strip_prefix = true\ntimeout = \"200ms\"",
        )],
    ))
    .await;
    let started = Instant::now();
    let res = get(&gw.url("/quick/slow")).await;
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "answered at the route's timeout, not when the upstream finally answered"
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = json(&res);
    assert_eq!(body["error"], "gateway_timeout");
    assert_eq!(body["route"], "/quick");
    assert_eq!(get(&gw.url("/healthz")).await.status(), 200);
}

// === path tricks ===

#[tokio::test]
async fn dot_segments_are_resolved_before_routing_and_forwarding() {
    let public = Upstream::start(Reply::status(200, "public")).await;
    let private = Upstream::start(Reply::status(200, "private")).await;
    let gw = TestGateway::start(&config(
        "",
        &[
            ("/public", public.url(""), ""),
            ("/private", private.url(""), ""),
        ],
    ))
    .await;
    for path in [
        "/public/../private/x",
        "/public/%2e%2e/private/x",
        "/public/%2E%2E/private/x",
        "/public/./../private/./x",
        "//private/x",
        "/private//x",
    ] {
        let res = get(&gw.url(path)).await;
        assert_eq!(
            res.body().as_ref(),
            b"private",
            "{path} is routed as /private/x"
        );
        assert_eq!(
            private.last().target,
            "/private/x",
            "{path} is forwarded as /private/x"
        );
    }
    assert_eq!(
        public.count(),
        0,
        "the public upstream never saw a traversal"
    );
}

#[tokio::test]
async fn ambiguous_path_encodings_are_refused_before_the_upstream() {
    let (up, gw) = standard(Reply::ok()).await;
    for path in [
        "/keep/..%2fapi/x",
        "/keep/..%2Fapi/x",
        "/api/a%2Fb",
        "/keep/%5c..%5capi/x",
        "/api/x%00",
        "/keep/%252e%252e/api/x",
        "/keep/..;/api/x",
        "/api/%zz",
    ] {
        let res = get(&gw.url(path)).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(json(&res)["error"], "invalid_request", "{path}");
    }
    assert_eq!(up.count(), 0, "no ambiguous path reached the upstream");
}

#[tokio::test]
async fn an_h2c_upgrade_is_not_forwarded() {
    let (up, gw) = standard(Reply::ok()).await;
    let req = Request::get(gw.url("/api/x"))
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .body(empty())
        .unwrap();
    let res = send(req).await;
    assert_eq!(res.status(), 200, "handled as plain HTTP/1.1");
    let seen = up.last().headers;
    assert!(!seen.contains_key("upgrade"), "{seen:?}");
    assert!(!seen.contains_key("http2-settings"), "{seen:?}");
    assert!(!seen.contains_key("connection"), "{seen:?}");
}

#[tokio::test]
async fn a_websocket_upgrade_the_upstream_declines_is_answered_like_any_response() {
    let (up, gw) = standard(Reply::status(426, "no websockets here")).await;
    for _ in 0..2 {
        let req = Request::get(gw.url("/api/ws"))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(empty())
            .unwrap();
        let res = send(req).await;
        assert_eq!(res.status(), 426);
        assert_eq!(res.body().as_ref(), b"no websockets here");
        assert_eq!(
            up.last().headers["upgrade"].to_str().unwrap(),
            "websocket",
            "the upgrade was offered to the upstream"
        );
    }
    assert_eq!(get(&gw.url("/api/plain")).await.status(), 426);
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn bytes_the_client_sends_with_its_upgrade_request_reach_the_upstream_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The client's first tunnel bytes come in the same segment as its upgrade request:
    // the gateway's server has read them with the head and must hand them on after the
    // 101. The upstream echoes the first five bytes it gets after its 101, then closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        };
        let mut rest = got.split_off(end);
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
        )
        .await
        .unwrap();
        while rest.len() < 5 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => rest.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(&rest).await;
        let _ = s.shutdown().await;
    });
    let gw = ws_gateway(up, "", "").await;
    let answer = raw_upgrade(gw.addr, b"EARLY").await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nEARLY"), "{answer}");
}

#[tokio::test]
async fn bytes_the_upstream_sends_with_its_101_reach_the_client_first() {
    // The upstream's first tunnel bytes arrive in the same segment as its 101 head: the
    // proxy has read them with the head and must pass them on before anything else.
    let (up, _) = raw_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nHELLO",
    )
    .await;
    let gw = ws_gateway(up, "", "").await;
    let answer = raw_upgrade(gw.addr, b"").await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nHELLO"), "{answer}");
}

/// Sends a WebSocket upgrade request for `/ws/x` with `after_head` in the same write,
/// and reads everything until the connection closes (the test fails after `WAIT`).
#[expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test helper fails the test loudly"
)]
async fn raw_upgrade(gw: std::net::SocketAddr, after_head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request =
        b"GET /ws/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_vec();
    request.extend_from_slice(after_head);
    let mut stream = TcpStream::connect(gw).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the tunnel closed")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
