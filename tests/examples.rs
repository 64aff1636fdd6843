//! Every example is driven by a test: its code is compiled in here and exercised.

#[path = "../examples/custom_middleware.rs"]
mod custom_middleware;

use http::{Request, StatusCode};
use portcullis::Body;
use tower::ServiceExt;

#[tokio::test]
async fn custom_middleware_runs_before_and_after_the_route() {
    let service = custom_middleware::gateway().service();

    let res = service
        .clone()
        .oneshot(Request::get("/hello").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the key check refuses"
    );
    assert!(
        res.headers().contains_key("x-response-time-us"),
        "timing is outermost: it still runs"
    );
    assert!(
        res.headers().contains_key("x-request-id"),
        "built-in layers wrap user middleware"
    );

    let req = Request::get("/hello")
        .header("x-api-key", "demo")
        .body(Body::empty())
        .unwrap();
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-response-time-us"));
}
