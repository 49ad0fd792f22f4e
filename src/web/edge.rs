//! The edge: what every request and every answer passes through, once, around the router.
//! Outermost, `PeerEdge` (the service hyper runs for one connection) gives the request its
//! client address and id, and on the way out logs and counts the answer and adds the headers
//! every answer carries; inside it CORS, then `Admission`, which holds a place among the
//! requests in flight and the request timeout, then the router, whose every route passes
//! `admit::Admit` first.
//!
//! The edge wraps the router once, not each route (axum would box every layer around every
//! route and clone the chain of boxes per request), and it is written by hand rather than
//! stacked from `from_fn`, `HandleError`, `load_shed`, a concurrency limit and `Timeout`:
//! each of those cloned and boxed per request, and the timeout armed a timer for every
//! request, where most (reads answered from memory) are done before it could fire.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{Cors, CorsLayer};

use super::access_log;
use super::error::ApiError;

/// Every route behind the edge, shared by all connections; cheap to clone.
#[derive(Clone)]
pub struct Edge {
    routes: Cors<Admission>,
}

impl Edge {
    /// `router` behind `cors`, at most `max_in_flight` requests at once, each answered
    /// within `request_timeout`.
    pub fn new(
        router: Router,
        cors: CorsLayer,
        max_in_flight: usize,
        request_timeout: Duration,
    ) -> Edge {
        let admission = Admission {
            router,
            places: Arc::new(Semaphore::new(max_in_flight)),
            timeout: request_timeout,
        };
        Edge {
            routes: cors.layer(admission),
        }
    }

    /// The service for one connection from `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> PeerEdge {
        PeerEdge {
            routes: self.routes.clone(),
            peer,
        }
    }
}

/// The edge as hyper runs it for one connection.
pub struct PeerEdge {
    routes: Cors<Admission>,
    /// The client's address: login limits count failures per address, which handlers read
    /// from the request's `ConnectInfo`.
    peer: SocketAddr,
}

/// Any body hyper reads (`Incoming`), or a test or benchmark builds.
impl<B> hyper::service::Service<Request<B>> for PeerEdge
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let method = request.method().clone();
        let id = access_log::request_id(request.headers());
        let answer = self.routes.clone().oneshot(request);
        Box::pin(async move {
            let mut response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // No route: the path names none, or the request was refused before routing.
            let route = response.extensions_mut().remove::<MatchedPath>();
            access_log::record(&method, route.as_ref(), &response, started.elapsed(), &id);
            let headers = response.headers_mut();
            add_browser_headers(headers);
            headers.insert(access_log::REQUEST_ID, id);
            Ok(response)
        })
    }
}

/// The router behind the cap on requests in flight and the request timeout: a request over
/// the cap is refused at once with 503 `overloaded` (waiting would only queue it behind the
/// load that filled the cap), and one not answered within the timeout gets 503 `timeout`.
/// Inside CORS, so browsers can read those answers too.
#[derive(Clone)]
pub struct Admission {
    router: Router,
    /// A place per request in flight, held until its answer is ready.
    places: Arc<Semaphore>,
    timeout: Duration,
}

impl Service<Request> for Admission {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            let refusal = ApiError::unavailable("overloaded", "too many requests in flight");
            return Box::pin(std::future::ready(Ok(refusal.into_response())));
        };
        let answer = self.router.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            let answer = within(timeout, answer).await;
            drop(place);
            Ok(match answer {
                Some(Ok(response)) => response,
                Some(Err(never)) => match never {},
                None => {
                    ApiError::unavailable("timeout", "the request took too long").into_response()
                }
            })
        })
    }
}

/// `answer`'s output, or `None` when it takes longer than `timeout`. The timer is armed only
/// once `answer` has to wait, so an answer ready at once (a read from memory) costs none;
/// the time limit then counts from that first wait, microseconds after the request came in.
async fn within<F: Future>(timeout: Duration, answer: F) -> Option<F::Output> {
    let mut answer = pin!(answer);
    let first = std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(output) => Some(output),
        Poll::Pending => tokio::time::timeout(timeout, answer).await.ok(),
    }
}

/// Adds what every answer tells a browser: `X-Content-Type-Options: nosniff`, so a JSON or
/// text answer is never read as something else; `X-Frame-Options: DENY`, so no other site
/// frames the web app; and `Referrer-Policy: no-referrer`, so a share link's secret in the
/// address never leaks to another site in a `Referer`.
fn add_browser_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_an_answer_that_waits_meets_the_timeout() {
        let ready = within(Duration::from_secs(1), async { 7 }).await;
        assert_eq!(ready, Some(7));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            7
        };
        assert_eq!(within(Duration::from_secs(1), slow).await, None);
        let in_time = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            7
        };
        assert_eq!(within(Duration::from_secs(1), in_time).await, Some(7));
    }
}
