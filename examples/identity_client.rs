//! A private-key identity getting an API token: the user proves they hold an Ed25519
//! key by signing the gateway's challenge, and the private key never leaves them.
//!
//! The steps, each printed: the identity (the public key, base64url), a challenge from
//! `GET /token/challenge?id=...`, the signature of the challenge string exactly as
//! received, the token from `POST /token` (grant
//! `urn:portcullis:params:oauth:grant-type:ed25519-challenge`), and a call to the
//! guarded `/api/hello` with it.
//!
//! Start the demo gateway (`cargo run --release`, whose `config.toml` enables open
//! enrolment), then:
//!
//! ```sh
//! cargo run --example identity_client                          # a new key each run
//! cargo run --example identity_client -- 127.0.0.1:8080 my.key # a key file
//! ```
//!
//! A key file is what `portcullis identity new --out my.key` writes (PKCS#8 PEM), or
//! the 32-byte seed, raw or in base64url.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::token::CHALLENGE_GRANT_TYPE;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Runs the whole flow against the gateway at `gateway` and returns the token.
pub(crate) async fn run(gateway: SocketAddr, key: &SigningKey) -> Result<String, Box<dyn Error>> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let id = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    println!("1. identity: {id}");

    let uri = format!("http://{gateway}/token/challenge?id={id}");
    let (status, body) = send(&client, Request::get(uri).body(Full::default())?).await?;
    let challenge = field(status, &body, "challenge")?;
    println!(
        "2. challenge (expires in {} s): {challenge}",
        body["expires_in"]
    );

    let signature = URL_SAFE_NO_PAD.encode(key.sign(challenge.as_bytes()).to_bytes());
    println!("3. signature: {signature}");

    // Every value is base64url, dots or colons: nothing to percent-encode.
    let form = format!(
        "grant_type={CHALLENGE_GRANT_TYPE}&id={id}&challenge={challenge}&signature={signature}"
    );
    let request = Request::post(format!("http://{gateway}/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::from(form))?;
    let (status, body) = send(&client, request).await?;
    let token = field(status, &body, "access_token")?;
    println!("4. token (scope {}): {token}", body["scope"]);

    let request = Request::get(format!("http://{gateway}/api/hello"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::default())?;
    let (status, body) = send(&client, request).await?;
    println!("5. GET /api/hello: {status} {body}");
    if status != StatusCode::OK {
        return Err(format!("the guarded route answered {status}").into());
    }
    Ok(token)
}

/// Sends `request`; the status and the JSON body (`null` if it is not JSON).
async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, serde_json::Value), Box<dyn Error>> {
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "the gateway did not answer in 10 s")??;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
}

/// The string `name` of a 200 answer, or the error the gateway gave.
fn field(
    status: StatusCode,
    body: &serde_json::Value,
    name: &str,
) -> Result<String, Box<dyn Error>> {
    match body[name].as_str() {
        Some(value) if status == StatusCode::OK => Ok(value.to_owned()),
        _ => Err(format!("{status}: {body}").into()),
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let gateway: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?;
    let seed = match args.next() {
        Some(path) => portcullis::token::identity::decode_private_key(&std::fs::read(path)?)?,
        None => {
            let mut seed = [0; 32];
            getrandom::fill(&mut seed)?;
            seed
        }
    };
    run(gateway, &SigningKey::from_bytes(&seed)).await?;
    Ok(())
}
